"""The nmt-wizard image contract as the runner receives it: the argv of a task not in exec mode.

Every expected argv below is written out from ``reference/nmt-wizard-docker-contract.md`` and
§6.3 of ``reference/nmt-wizard-upstream-behaviour.md``, in their order: ``docker run -i --rm``,
GPUs, ``-v`` mounts, ``-e`` env vars, ``-e NB_CPU`` ``--cpuset-cpus``, ``-e TMP_DIR``, the
image, then ``-s``, ``-g``, ``-t``, ``-b``, ``-bi``, ``--statistics_url``, ``-i``, the default
model storage and the user command (SNW adds ``--name``/``--label`` to find its container and
mounts the task's files at ``TMP_DIR``). ``[[private:…]]`` marks what the runner masks in the
log's ``COMMAND:`` line and strips before running.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nmtwizard.exceptions import ConfigError, TaskError
from nmtwizard.services import LaunchRequest
from nmtwizard.services.hostexec import build_start_request
from nmtwizard.services.local import LocalService
from tests.services.remote_pool import CONTRACT_IMAGE, pool_config

T = "AATRN_enfr_Model_01_abc"
TOKEN = "_T_tokenOfTheTask"
CB = "http://[[private:_T_tokenOfTheTask]]:x@launcher:8000"
STORAGES = (
    '{"launcher": {"type": "http", '
    f'"get_pattern": "{CB}/task/file/{T}/%s", '
    f'"post_pattern": "{CB}/task/file/{T}/%s"}}, '
    '"models": {"type": "local", "basedir": "/srv/models", "default_ms": true}}'
)
IMAGE = "nmtwizard/opennmt-tf"
REF = "nmtwizard/opennmt-tf:v1.20.0"


def _data(**variables) -> dict:
    return {
        "name": "contract",
        "description": "contract pool",
        "service": "local",
        "callback_url": "http://launcher:8000/",
        "callback_interval": 30,
        "storages": {
            "launcher": {
                "type": "http",
                "get_pattern": "<CALLBACK_URL>/task/file/<TASK_ID>/%s",
                "post_pattern": "<CALLBACK_URL>/task/file/<TASK_ID>/%s",
            },
            "models": {"type": "local", "basedir": "/srv/models", "default_ms": True},
        },
        "docker": {
            "registries": {
                "dockerhub": {"type": "dockerhub", "uri": "", "default_for": ["nmtwizard"]}
            },
            "mount": ["/data/corpus:/root/corpus"],
            "envvar": {
                "LANG": "C.UTF-8",
                "specific": {IMAGE: {"TF_MODE": "fast"}, "other/image": {"NOT": "this"}},
                "S3_KEY": "[[private:s3-SECRET]]",
            },
        },
        "variables": {
            "runtime": "process",
            "server_pool": [{"name": "gpu1", "gpus": [0, 1, 2, 3], "ncpus": 8}],
            "entrypoints": {IMAGE: ["python3", "utilities/onmt.py"]},
            **variables,
        },
    }


def _request(gpus=("1", "3"), command=("-c", "${TMP_DIR}/config.json", "train"), **changes):
    fields = {
        "task_id": T,
        "host": "gpu1",
        "gpus": gpus,
        "cpus": ("4", "5"),
        "image": IMAGE,
        "tag": "v1.20.0",
        "command": command,
        "token": TOKEN,
        "exec_mode": False,
        "support_statistics": True,
    }
    fields.update(changes)
    return LaunchRequest(**fields)


def _start(data: dict, request: LaunchRequest, runtime: str = "process") -> dict:
    config = pool_config(data)
    service = LocalService(config)
    return build_start_request(
        config,
        request,
        runtime=runtime,
        workdir="/w/T",
        docker=service.docker_binary(),
        files={},
        host=service.hosts["gpu1"],
    )


STATISTICS = ["--statistics_url", f"{CB}/task/stat/{T}"]


# ----------------------------------------------------------------------------- process runtime


@pytest.mark.parametrize(
    ("variables", "gpus", "g", "statistics", "cuda"),
    [
        ({}, ("1", "3"), ["-g", "0,1"], STATISTICS, "1,3"),
        ({}, (), [], [], ""),  # a CPU task, current numbering: no -g
        ({"gpu_numbering": "1-indexed"}, ("1", "3"), ["-g", "1,2"], [], "1,3"),
        ({"gpu_numbering": "1-indexed"}, (), ["-g", "0"], [], ""),
        ({"gpu_numbering_by_image": {IMAGE: "1-indexed"}}, ("2",), ["-g", "1"], [], "2"),
        ({"gpu_numbering_by_image": {IMAGE: "1-indexed"}}, (), ["-g", "0"], [], ""),
    ],
)
def test_process_runtime_entrypoint_arguments(variables, gpus, g, statistics, cuda):
    request = _request(gpus=gpus, support_statistics=bool(statistics))
    spec = _start(_data(**variables), request)
    assert spec["argv"] == [
        "python3", "utilities/onmt.py",
        "-s", "-",
        *g,
        "-t", T,
        "-b", CB, "-bi", "30",
        *statistics,
        "-i", REF,
        "-ms", "models:",
        "-c", "/w/T/files/config.json", "train",
    ]  # fmt: skip
    assert spec["program"] == 2
    assert spec["env"]["CUDA_VISIBLE_DEVICES"] == cuda  # host ids: no renumbering


def test_process_runtime_storages_environment_and_callback():
    spec = _start(_data(), _request())
    assert spec["stdin"] == STORAGES  # -s -: read from stdin, so no credential is in argv
    assert spec["env"] == {
        "LANG": "C.UTF-8",
        "TF_MODE": "fast",
        "S3_KEY": "s3-SECRET",
        "NB_CPU": "2",
        "TMP_DIR": "/w/T/files",
        "CUDA_VISIBLE_DEVICES": "1,3",
    }
    assert spec["callback"] == {"url": "http://launcher:8000", "token": TOKEN, "interval": 30}


def test_per_image_numbering_leaves_other_images_current():
    data = _data(gpu_numbering="1-indexed", gpu_numbering_by_image={IMAGE: "0-indexed"})
    spec = _start(data, _request(gpus=("1", "3")))
    assert spec["argv"][spec["argv"].index("-g") + 1] == "0,1"


# ----------------------------------------------------------------------------- docker runtime


@pytest.mark.parametrize(
    ("variables", "gpus", "program", "exposure", "g", "statistics", "env"),
    [
        (  # GPUs through docker's own --gpus
            {},
            ("1", "3"),
            "/opt/docker/bin/docker",
            ["--gpus", '"device=1,3"'],
            ["-g", "0,1"],
            STATISTICS,
            {"S3_KEY": "s3-SECRET"},  # the private value: never on the line
        ),
        (
            {"gpu_numbering": "1-indexed"},
            (),
            "/opt/docker/bin/docker",
            [],
            ["-g", "0"],
            [],
            {"S3_KEY": "s3-SECRET"},
        ),
        (  # a server that says so: nvidia-docker, next to docker, with NV_GPU (host ids)
            {"with_nvidia_docker": True},
            ("1", "3"),
            "/opt/docker/bin/nvidia-docker",
            [],
            ["-g", "0,1"],
            [],
            {"S3_KEY": "s3-SECRET", "NV_GPU": "1,3"},
        ),
        (  # a CPU task there: plain docker
            {"with_nvidia_docker": True},
            (),
            "/opt/docker/bin/docker",
            [],
            [],
            [],
            {"S3_KEY": "s3-SECRET"},
        ),
    ],
    ids=["gpus", "cpu-legacy-numbering", "nvidia-docker", "nvidia-docker-cpu"],
)
def test_docker_command_line(variables, gpus, program, exposure, g, statistics, env):
    data = _data(**variables)
    data["docker"]["path"] = "/opt/docker/bin"
    request = _request(gpus=gpus, support_statistics=bool(statistics))
    spec = _start(data, request, runtime="docker")
    assert spec["argv"] == [
        program, "run", "-i", "--rm", "--name", f"snw-{T}", "--label", f"snw.task={T}",
        *exposure,
        "-v", "/data/corpus:/root/corpus",
        "-v", f"/w/T/files:/root/tmp/{T}",
        "-e", "LANG=C.UTF-8",
        "-e", "TF_MODE=fast",
        "-e", "S3_KEY",
        "-e", "NB_CPU=2", "--cpuset-cpus", "4,5",
        "-e", f"TMP_DIR=/root/tmp/{T}",
        REF,
        "-s", "-",
        *g,
        "-t", T,
        "-b", CB, "-bi", "30",
        *statistics,
        "-i", REF,
        "-ms", "models:",
        "-c", f"/root/tmp/{T}/config.json", "train",
    ]  # fmt: skip
    assert spec["env"] == env
    assert spec["container"] == f"snw-{T}"


# ----------------------------------------------------------------------------- details


@pytest.mark.parametrize(
    ("storages", "command", "added"),
    [
        ({"s3": {"default_ms": True}}, ["train"], ["-ms", "s3:"]),
        ({"s3": {"default_ms": True}}, ["-ms", "mine:", "train"], []),
        ({"s3": {"default_ms": True}}, ["--model_storage=mine:", "train"], []),
        ({"s3": {"default_ms": True}}, ["-msr", "a:", "-msw", "b:", "train"], []),
        ({"s3": {"default_ms": True}}, ["-msr", "a:", "train"], ["-ms", "s3:"]),
        (
            {"r": {"default_msr": True}, "w": {"default_msw": True}},
            [],
            ["-msr", "r:", "-msw", "w:"],
        ),
        ({"r": {"default_msr": True}, "w": {"default_msw": True}}, ["-msw", "x:"], ["-msr", "r:"]),
        ({"s3": {"type": "s3"}}, ["train"], []),
    ],
)
def test_default_model_storage_unless_the_command_gives_one(storages, command, added):
    data = _data()
    data["storages"] = storages
    data["callback_url"] = ""
    spec = _start(data, _request(gpus=(), command=tuple(command)))
    storages_json = json.dumps(storages)
    assert spec["argv"] == [
        "python3", "utilities/onmt.py", "-s", "-", "-t", T, "-i", REF, *added, *command
    ]  # fmt: skip
    assert spec["stdin"] == storages_json  # the storages reach the image on its stdin


def test_no_storages_no_callback_url_no_token():
    data = _data()
    data["storages"] = {}
    data["callback_url"] = ""
    spec = _start(data, _request(gpus=("0",), token=None))
    assert spec["argv"] == [
        "python3", "utilities/onmt.py", "-g", "0", "-t", T, "-i", REF,
        "-c", "/w/T/files/config.json", "train",
    ]  # fmt: skip
    assert "callback" not in spec


def test_callback_url_without_a_token_is_passed_as_is():
    spec = _start(_data(), _request(gpus=(), token=None, support_statistics=False))
    assert spec["argv"][spec["argv"].index("-b") : spec["argv"].index("-i")] == [
        "-b", "http://launcher:8000", "-bi", "30",
    ]  # fmt: skip


def test_unmapped_image_in_the_process_runtime_names_the_key():
    with pytest.raises(TaskError) as error:
        _start(_data(), _request(image="nmtwizard/opennmt-py"))
    assert str(error.value) == (
        "image 'nmtwizard/opennmt-py' has no local program in pool contract: the process "
        "runtime needs variables.entrypoints['nmtwizard/opennmt-py'] (the program that plays "
        "its entrypoint), or launch with exec_mode: true"
    )


def test_exec_mode_keeps_the_command_as_given():
    spec = _start(_data(), _request(exec_mode=True, command=("sh", "-c", "echo $TMP_DIR")))
    assert spec["argv"] == ["sh", "-c", "echo $TMP_DIR"]
    assert spec["env"]["TASK_TOKEN"] == TOKEN and spec["env"]["CALLBACK_URL"] == (
        "http://launcher:8000"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"gpu_numbering": "from1"},
            "key variables.gpu_numbering: expected 0-indexed or 1-indexed",
        ),
        (
            {"gpu_numbering_by_image": {IMAGE: 1}},
            f"key variables.gpu_numbering_by_image.{IMAGE}: expected 0-indexed or 1-indexed",
        ),
        ({"with_nvidia_docker": "yes"}, "key variables.with_nvidia_docker: expected a boolean"),
        (
            {"entrypoints": {IMAGE: "python3 x.py"}},
            f"key variables.entrypoints.{IMAGE}: expected a program and its arguments",
        ),
    ],
)
def test_contract_keys_are_checked_with_the_key_named(change, message):
    with pytest.raises(ConfigError) as error:
        pool_config(_data(**change), "contract.json")
    assert str(error.value).startswith(f"contract.json: {message}")


def test_default_ms_excludes_default_msr():
    data = _data()
    data["storages"]["reads"] = {"type": "local", "basedir": "/r", "default_msr": True}
    with pytest.raises(ConfigError) as error:
        pool_config(data, "contract.json")
    assert str(error.value) == (
        "contract.json: key storages: default_ms excludes default_msr and default_msw"
    )


# ----------------------------------------------------------------------------- the test image


def _run_image(tmp_path, argv, **env):
    return subprocess.run(
        [sys.executable, str(CONTRACT_IMAGE), *argv],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_image_without_ms_or_models_dir_fails_at_parse_time(tmp_path):
    result = _run_image(tmp_path, ["-t", "T1", "train"])
    assert result.returncode == 2
    assert "-ms/--model_storage not given and MODELS_DIR is not set" in result.stderr


@pytest.mark.parametrize(
    ("argv", "env", "why"),
    [
        (["-g", "0,1"], {"CUDA_VISIBLE_DEVICES": "5"}, "-g 0,1 for 1 GPU(s), 0-indexed"),
        (["-g", "0"], {"CUDA_VISIBLE_DEVICES": ""}, "no -g for a CPU task"),
        (
            [],
            {"CUDA_VISIBLE_DEVICES": "", "CONTRACT_GPU_NUMBERING": "1-indexed"},
            "-g 0 for 0 GPU(s), 1-indexed",
        ),
    ],
)
def test_image_exits_1_when_its_g_does_not_match_its_gpus(tmp_path, argv, env, why):
    storages = json.dumps({"m": {"type": "local", "basedir": str(tmp_path)}})
    result = _run_image(tmp_path, ["-s", storages, "-ms", "m:", *argv, "train"], **env)
    assert result.returncode == 1
    assert f"contract: MISMATCH: {why}" in result.stdout
