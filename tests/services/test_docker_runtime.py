"""The Docker runtime. There is no Docker daemon here: the command line is checked as built,
and the runner is exercised with a stand-in ``docker`` CLI (a shell script that records its
arguments and stdin) to prove the login password travels on stdin only."""

from __future__ import annotations

import json
import time
from dataclasses import replace

from nmtwizard.keys import Keys
from nmtwizard.services import LaunchRequest, ServiceContext
from nmtwizard.services.hostexec import build_start_request
from nmtwizard.services.local import LocalService
from tests.services.remote_pool import enqueue, pool_config

PASSWORD = "reg-PASSWORD-33ab"
TOKEN = "tok-SECRET-docker"


def _data(tmp_path, docker_path=None):
    docker = {
        "registries": {
            "private": {
                "type": "dockerprivate",
                "uri": "registry.example:5000",
                "credentials": {"username": "bot", "password": f"[[private:{PASSWORD}]]"},
                "default_for": ["snw/"],
            },
        },
        "mount": ["/data/corpus:/root/corpus"],
        "envvar": {"LANG": "C.UTF-8", "specific": {"snw/trainer": {"MODE": "fast"}}},
    }
    if docker_path:
        docker["path"] = str(docker_path)
    return {
        "name": "dock",
        "description": "docker pool",
        "service": "local",
        "callback_url": "http://launcher:8000",
        "callback_interval": 30,
        "storages": {"launcher": {"type": "http", "get_pattern": "<CALLBACK_URL>/file/<TASK_ID>"}},
        "docker": docker,
        "variables": {
            "runtime": "docker",
            "work_dir": str(tmp_path / "tasks"),
            "server_pool": [{"name": "gpu1", "gpus": [0, 1, 2, 3], "ncpus": 8}],
        },
    }


def _request(task_id="TSuse_enfr_Model_01_abc"):
    return LaunchRequest(
        task_id=task_id,
        host="gpu1",
        gpus=("1", "3"),
        cpus=("4", "5"),
        image="snw/trainer",
        tag="2.1",
        command=("train", "--config", "${TMP_DIR}/conf.json"),
        callback_url="http://launcher:8000",
        token=TOKEN,
    )


def test_exec_mode_docker_command_line(tmp_path):
    """``exec_mode``: the command as given, nmt-wizard's ``docker run`` order, every env value
    (secrets included) in the docker CLI's environment and only its name on the line."""
    config = pool_config(_data(tmp_path))
    spec = build_start_request(
        config, _request(), runtime="docker", workdir="/w/T", docker="docker", files={}
    )
    t = "TSuse_enfr_Model_01_abc"
    names = [
        "CALLBACK_INTERVAL",
        "CALLBACK_URL",
        "CUDA_VISIBLE_DEVICES",
        "LANG",
        "MODE",
        "NVIDIA_VISIBLE_DEVICES",
        "SNW_CPU_IDS",
        "SNW_GPU_IDS",
        "STORAGES",
        "TASK_ID",
        "TASK_TOKEN",
    ]
    assert spec["argv"] == [
        "docker", "run", "-i", "--rm", "--name", f"snw-{t}", "--label", f"snw.task={t}",
        "--gpus", '"device=1,3"',
        "-v", "/data/corpus:/root/corpus",
        "-v", f"/w/T/files:/root/tmp/{t}",
        *[arg for name in names for arg in ("-e", name)],
        "-e", "NB_CPU=2", "--cpuset-cpus", "4,5",
        "-e", f"TMP_DIR=/root/tmp/{t}",
        "registry.example:5000/snw/trainer:2.1",
        "train", "--config", f"/root/tmp/{t}/conf.json",
    ]  # fmt: skip
    env = spec["env"]
    assert env["NVIDIA_VISIBLE_DEVICES"] == "1,3" and env["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert env["TASK_TOKEN"] == TOKEN and env["MODE"] == "fast"
    # the launcher storage authenticates with the task token (Basic user), unmarked in env
    assert json.loads(env["STORAGES"])["launcher"]["get_pattern"] == (
        "http://tok-SECRET-docker:x@launcher:8000/file/TSuse_enfr_Model_01_abc"
    )
    assert spec["logins"] == [
        {
            "docker": "docker",
            "registry": "registry.example:5000",
            "username": "bot",
            "password": PASSWORD,
        }
    ]
    assert PASSWORD not in " ".join(spec["argv"]) and TOKEN not in " ".join(spec["argv"])


STUB = """#!/bin/sh
echo "$*" >> "{log}"
if [ "$1" = login ]; then read -r pw; echo "stdin=$pw" >> "{log}"; exit 0; fi
if [ "$1" = rm ]; then exit 0; fi
echo "NV=$NVIDIA_VISIBLE_DEVICES CUDA=$CUDA_VISIBLE_DEVICES"
sleep 0.3
"""


def test_docker_runtime_through_the_runner_with_a_stub_cli(tmp_path, store, redis_client):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "docker-calls.log"
    (bin_dir / "docker").write_text(STUB.format(log=calls))
    (bin_dir / "docker").chmod(0o755)
    service = LocalService(
        pool_config(_data(tmp_path, bin_dir)), ServiceContext(redis_client, Keys())
    )
    service.validate()
    task_id = enqueue(store, "dock", [], ngpus=2)
    request = _request(task_id)
    job = service.launch(request)
    assert job["runtime"] == "docker" and job["container"] == f"snw-{task_id}"
    deadline = time.monotonic() + 10
    while service.status(task_id, "gpu1", job).state.value == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert service.status(task_id, "gpu1", job).state.value == "completed"
    recorded = calls.read_text().splitlines()
    assert recorded[0] == "login --username bot --password-stdin registry.example:5000"
    assert recorded[1] == f"stdin={PASSWORD}"  # the password came through stdin
    assert recorded[2].startswith(f"run -i --rm --name snw-{task_id}")
    assert PASSWORD not in recorded[2] and TOKEN not in recorded[2]
    assert "NV=1,3 CUDA=0,1" in store.read_log(task_id)[0].decode()


CONTRACT_STUB = """#!/bin/sh
echo "$(basename "$0") $*" >> "{log}"
if [ "$1" = login ]; then read -r pw; echo "stdin=$pw" >> "{log}"; exit 0; fi
if [ "$1" = rm ]; then exit 0; fi
echo "stdin=$(cat)" >> "{log}"
echo "NV_GPU=$NV_GPU S3_KEY-length=${{#S3_KEY}}"
"""


def test_contract_mode_through_nvidia_docker_with_a_stub_cli(tmp_path, store, redis_client):
    """The image contract on a ``with_nvidia_docker`` server: ``nvidia-docker`` gets the
    entrypoint arguments (the token in the callback URL, as the contract requires), ``NV_GPU``
    and the private env value through its environment; the log's COMMAND line masks them."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "docker-calls.log"
    for name in ("docker", "nvidia-docker"):
        (bin_dir / name).write_text(CONTRACT_STUB.format(log=calls))
        (bin_dir / name).chmod(0o755)
    data = _data(tmp_path, bin_dir)
    data["docker"]["envvar"]["S3_KEY"] = "[[private:s3-SECRET]]"
    data["variables"]["server_pool"][0]["with_nvidia_docker"] = True
    service = LocalService(pool_config(data), ServiceContext(redis_client, Keys()))
    service.validate()
    task_id = enqueue(store, "dock", [], ngpus=2)
    request = replace(_request(task_id), exec_mode=False)
    job = service.launch(request)
    deadline = time.monotonic() + 10
    while service.status(task_id, "gpu1", job).state.value == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert service.status(task_id, "gpu1", job).state.value == "completed"
    workdir = job["workdir"]
    ref = "registry.example:5000/snw/trainer:2.1"
    storages = (
        f'{{"launcher": {{"type": "http", "get_pattern": '
        f'"http://{TOKEN}:x@launcher:8000/file/{task_id}"}}}}'
    )
    recorded = calls.read_text().splitlines()
    assert recorded[:2] == [
        "docker login --username bot --password-stdin registry.example:5000",
        f"stdin={PASSWORD}",
    ]
    assert recorded[2] == " ".join(
        [
            "nvidia-docker", "run", "-i", "--rm", "--name", f"snw-{task_id}",
            "--label", f"snw.task={task_id}",
            "-v", "/data/corpus:/root/corpus",
            "-v", f"{workdir}/files:/root/tmp/{task_id}",
            "-e", "LANG=C.UTF-8", "-e", "MODE=fast", "-e", "S3_KEY",
            "-e", "NB_CPU=2", "--cpuset-cpus", "4,5",
            "-e", f"TMP_DIR=/root/tmp/{task_id}",
            ref,
            "-s", "-",
            "-g", "0,1",
            "-t", task_id,
            "-b", f"http://{TOKEN}:x@launcher:8000", "-bi", "30",
            "-i", ref,
            "train", "--config", f"/root/tmp/{task_id}/conf.json",
        ]
    )  # fmt: skip
    assert recorded[3] == f"stdin={storages}"  # -s -: the storages reach the image on stdin
    log = store.read_log(task_id)[0].decode()
    command, output = log.splitlines()[0], log.splitlines()[1:]
    assert command.startswith(f"COMMAND: {bin_dir}/nvidia-docker run -i --rm --name snw-{task_id}")
    assert "-b 'http://[[private]]:x@launcher:8000' -bi 30" in command
    assert "NV_GPU=1,3 S3_KEY-length=9" in output
    for secret in (TOKEN, PASSWORD, "s3-SECRET"):
        assert secret not in log
