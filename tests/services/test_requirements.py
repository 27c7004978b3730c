"""The pool's ``requirements`` checked on the host before a launch, as nmt-wizard does.

``free_gpu_memory`` (MiB free on each allocated GPU, read with ``nvidia-smi``) and
``free_disk_space`` (``{path: GB}``): a host that fails them is quarantined with a message
naming the GPU or path, the task is re-queued (not failed) and runs on a host that passes. No
GPU exists here: a stand-in ``nvidia-smi`` (:mod:`tests.services.gpu_stand_in`) is first on the
PATH of the ``local`` service's worker and of the ``ssh`` test hosts' sessions.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.services.gpu_stand_in import install_nvidia_smi, nvidia_smi_calls, remove_nvidia_smi
from tests.services.remote_pool import enqueue

QUERY = "--query-gpu=index,memory.free --format=csv,noheader,nounits -i"
HUGE_GB = 10**9
PRINT_GPU = ["sh", "-c", "echo ran with GPU $SNW_GPU_IDS"]


def _quarantine(store, pool: str, host: str) -> str | None:
    info = store.redis.hget(store.keys.quarantine(pool), host)
    return json.loads(info)["message"] if info else None


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a killed process may stay a zombie until its reaper waits)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _write(config_dir, data: dict) -> None:
    config_dir.mkdir(exist_ok=True)
    (config_dir / f"{data['name']}.json").write_text(json.dumps(data))


@pytest.fixture
def stand_in_bin(tmp_path, monkeypatch):
    """A directory first on this process's PATH (the ``local`` service's runner inherits it)."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", f"{directory}:/usr/local/bin:/usr/bin:/bin")
    return directory


def local_pool(tmp_path, requirements: dict) -> dict:
    """Two ``local`` hosts with one GPU each; ``gpu-a`` has the higher priority, so it is tried
    first."""
    return {
        "name": "reqs",
        "description": "requirements on local hosts",
        "service": "local",
        "variables": {
            "runtime": "process",
            "terminate_grace": 1,
            "server_pool": [
                {
                    "name": name,
                    "gpus": [gpu],
                    "ncpus": 2,
                    "work_dir": str(tmp_path / name),
                    **extra,
                }
                for name, gpu, extra in (("gpu-a", 0, {"priority": 2}), ("gpu-b", 1, {}))
            ],
        },
        "requirements": requirements,
    }


# ---------------------------------------------------------------------------- local service


def test_local_host_short_of_gpu_memory_is_quarantined_and_the_task_runs_elsewhere(
    tmp_path, stand_in_bin, store, make_worker
):
    install_nvidia_smi(stand_in_bin, {"0": 2000, "1": 16000})
    _write(tmp_path / "config", local_pool(tmp_path, {"free_gpu_memory": 8000}))
    runner = make_worker("reqs", tmp_path / "config")
    task_id = enqueue(store, "reqs", PRINT_GPU, ngpus=1)

    task = runner.stopped(task_id)

    reason = (
        "gpu-a: runner start: not enough free memory on GPU 0: 2000 MiB free, 8000 MiB required "
        "(requirements.free_gpu_memory)"
    )
    assert _quarantine(store, "reqs", "gpu-a") == reason
    assert _quarantine(store, "reqs", "gpu-b") is None
    assert task["message"] == "completed" and task["job"]["host"] == "gpu-b"
    log = runner.log(task_id)
    assert f"[launcher] gpu-a unusable, task re-queued: {reason}\n" in log
    assert "ran with GPU 1\n" in log
    assert nvidia_smi_calls(stand_in_bin) == [f"{QUERY} 0", f"{QUERY} 1"]
    assert not (tmp_path / "gpu-a" / task_id).exists()  # nothing started on the failing host


def test_a_cpu_task_runs_without_nvidia_smi(tmp_path, stand_in_bin, store, make_worker):
    install_nvidia_smi(stand_in_bin, {"0": 100, "1": 100})
    _write(tmp_path / "config", local_pool(tmp_path, {"free_gpu_memory": 8000}))
    runner = make_worker("reqs", tmp_path / "config")
    task_id = enqueue(store, "reqs", ["true"], ngpus=0, ncpus=1)

    assert runner.stopped(task_id)["message"] == "completed"
    assert nvidia_smi_calls(stand_in_bin) == []


@pytest.mark.parametrize(
    ("requirements", "reason"),
    [
        (
            {"free_gpu_memory": 8000},  # no nvidia-smi on the PATH
            r"cannot run nvidia-smi to check the free memory of GPU 0: No such file or directory "
            r"\(requirements\.free_gpu_memory\)",
        ),
        (
            {"free_disk_space": {"{tmp}": HUGE_GB}},
            r"not enough free disk space on {tmp}: \d+\.\d GB free, 1000000000 GB required "
            r"\(requirements\.free_disk_space\)",
        ),
        (
            {"free_disk_space": {"{tmp}/missing": 1}},
            r"cannot check the free disk space of {tmp}/missing: No such file or directory "
            r"\(requirements\.free_disk_space\)",
        ),
    ],
    ids=["missing-nvidia-smi", "disk-too-small", "missing-path"],
)
def test_local_hosts_failing_requirements_are_quarantined_and_the_task_stays_queued(
    requirements, reason, tmp_path, stand_in_bin, store, make_worker
):
    tmp = str(tmp_path)
    requirements = json.loads(json.dumps(requirements).replace("{tmp}", tmp))
    _write(tmp_path / "config", local_pool(tmp_path, requirements))
    runner = make_worker("reqs", tmp_path / "config")
    task_id = enqueue(store, "reqs", PRINT_GPU, ngpus=1)

    def both_quarantined():
        messages = [_quarantine(store, "reqs", host) for host in ("gpu-a", "gpu-b")]
        return messages if all(messages) else None

    messages = runner.until(both_quarantined, what="both hosts quarantined")

    reason = reason.replace("{tmp}", re.escape(tmp))
    assert re.fullmatch(f"gpu-a: runner start: {reason}", messages[0])
    assert re.fullmatch(f"gpu-b: runner start: {reason.replace('GPU 0', 'GPU 1')}", messages[1])
    runner.worker.wait_idle()
    task = store.get(task_id)
    assert task["status"] == "queued" and "message" not in task
    assert runner.log(task_id).count("unusable, task re-queued") == 2


def test_a_hung_nvidia_smi_is_killed_and_the_host_quarantined_within_the_deadline(
    tmp_path, stand_in_bin, store, make_worker
):
    """One call for all the task's GPUs, killed after a third of the command timeout (6 s):
    the runner answers before the worker gives up on it, so the host is quarantined (not the
    task pinned to it as of unknown outcome) and the task stays queued."""
    install_nvidia_smi(stand_in_bin, {"0": 16000, "1": 16000}, hang_seconds=30)
    data = local_pool(tmp_path, {"free_gpu_memory": 8000})
    data["variables"]["command_timeout"] = 6
    data["variables"]["server_pool"][0]["gpus"] = [0, 1]
    _write(tmp_path / "config", data)
    started = time.monotonic()
    runner = make_worker("reqs", tmp_path / "config")
    task_id = enqueue(store, "reqs", PRINT_GPU, ngpus=2, options={"server": "gpu-a"})

    message = runner.until(lambda: _quarantine(store, "reqs", "gpu-a"), what="quarantine")

    assert time.monotonic() - started < 6
    assert message == (
        "gpu-a: runner start: nvidia-smi did not answer in 2s for GPU 0,1 "
        "(requirements.free_gpu_memory)"
    )
    assert nvidia_smi_calls(stand_in_bin) == [f"{QUERY} 0,1"]
    sleeper = int((stand_in_bin / "nvidia-smi.pid").read_text())
    runner.until(lambda: not _running(sleeper), timeout=2, what="its process group killed")
    runner.worker.wait_idle()
    task = store.get(task_id)
    assert task["status"] == "queued" and "message" not in task
    assert f"[launcher] gpu-a unusable, task re-queued: {message}\n" in runner.log(task_id)


# ---------------------------------------------------------------------------- ssh hosts


@pytest.fixture
def ssh_pool(remote_hosts, tmp_path):
    """``remote_test`` data, and the stand-ins removed from every host afterwards."""
    data = json.loads(json.dumps(remote_hosts.data))
    yield data
    for host in remote_hosts.hosts:
        remove_nvidia_smi(host.bin)


def test_ssh_host_short_of_gpu_memory_is_quarantined_and_the_task_runs_elsewhere(
    ssh_pool, remote_hosts, tmp_path, store, make_worker
):
    install_nvidia_smi(remote_hosts.host("host1").bin, {"0": 1500, "1": 1500, "2": 900})
    install_nvidia_smi(remote_hosts.host("host2").bin, {"0": 12000, "1": 12000})
    ssh_pool["variables"]["server_pool"][1]["priority"] = 2  # host1 is tried first
    ssh_pool["requirements"] = {"free_gpu_memory": 10000}
    _write(tmp_path / "config", ssh_pool)
    runner = make_worker("remote_test", tmp_path / "config")
    task_id = enqueue(
        store, "remote_test", PRINT_GPU, ngpus=2, options={"server": ["host1", "host2"]}
    )

    task = runner.stopped(task_id, timeout=30)

    reason = (
        "host1: runner start: not enough free memory on GPU 0: 1500 MiB free, 10000 MiB "
        "required (requirements.free_gpu_memory)"
    )
    assert _quarantine(store, "remote_test", "host1") == reason
    assert task["message"] == "completed" and task["job"]["host"] == "host2"
    log = runner.log(task_id)
    assert f"[launcher] host1 unusable, task re-queued: {reason}\n" in log
    assert "ran with GPU 0,1\n" in log
    assert nvidia_smi_calls(remote_hosts.host("host1").bin) == [f"{QUERY} 0,1"]
    assert nvidia_smi_calls(remote_hosts.host("host2").bin) == [f"{QUERY} 0,1"]


def test_ssh_host_short_of_disk_space_is_quarantined_and_the_task_re_queued(
    ssh_pool, remote_hosts, tmp_path, store, make_worker
):
    root = str(remote_hosts.host("host3").root)
    ssh_pool["requirements"] = {"free_disk_space": {root: HUGE_GB}}
    _write(tmp_path / "config", ssh_pool)
    runner = make_worker("remote_test", tmp_path / "config")
    task_id = enqueue(store, "remote_test", ["true"], ngpus=1, options={"server": "host3"})

    message = runner.until(lambda: _quarantine(store, "remote_test", "host3"), what="quarantine")

    assert re.fullmatch(
        rf"host3: runner start: not enough free disk space on {re.escape(root)}: \d+\.\d GB "
        r"free, 1000000000 GB required \(requirements\.free_disk_space\)",
        message,
    )
    runner.worker.wait_idle()
    assert store.get(task_id)["status"] == "queued"
    assert "[launcher] host3 unusable, task re-queued: host3: runner start: not enough free" in (
        runner.log(task_id)
    )
