"""The ``remote_test`` pool on real sshd hosts, and small engine helpers for service tests.

:func:`start_remote_test` starts the 4 hosts of ``nmt-wizard/config/remote_test.json`` with the
harness of :mod:`tests.services.sshd` and returns that configuration with the hosts' real ports,
keys, known_hosts and working roots. ``bench/ssh.py`` uses it too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import uuid
from pathlib import Path

from nmtwizard import hooks
from nmtwizard.api import Engine
from nmtwizard.pool_config import parse_pool_config
from nmtwizard.services import local, ssh  # noqa: F401 - registers the plugins
from tests.services.sshd import SshdHost, start_hosts

__all__ = [
    "CONFIG_DIR",
    "CONTRACT_IMAGE",
    "RemoteTest",
    "enqueue",
    "kill_sshd",
    "kill_tree_under",
    "pool_config",
    "processes",
    "start_remote_test",
]

CONFIG_DIR = Path(__file__).resolve().parents[2] / "nmt-wizard" / "config"
CONTRACT_IMAGE = Path(__file__).with_name("contract_image.py")  # the contract-test image


class RemoteTest:
    """Running hosts of the pool and the configuration data pointing at them."""

    def __init__(self, keys, hosts: list[SshdHost], known_hosts: Path, data: dict):
        self.keys = keys
        self.hosts = hosts
        self.known_hosts = known_hosts
        self.data = data

    def host(self, name: str) -> SshdHost:
        return next(h for h in self.hosts if h.name == name)

    def stop(self) -> None:
        for host in self.hosts:
            kill_sshd(host)
            kill_tree_under(host.root)


def start_remote_test(directory: Path) -> RemoteTest:
    data = json.loads((CONFIG_DIR / "remote_test.json").read_text())
    servers = data["variables"]["server_pool"]
    keys, hosts, known_hosts = start_hosts(Path(directory), len(servers))
    for server, host in zip(servers, hosts, strict=True):
        server.update(name=host.name, port=host.port, work_dir=str(host.root))
    data["variables"].update(known_hosts=str(known_hosts), key_filename=str(keys.private_key))
    return RemoteTest(keys, hosts, known_hosts, data)


def pool_config(data: dict, source: str = "test.json"):
    return parse_pool_config(json.loads(json.dumps(data)), source)


def enqueue(
    store,
    pool: str,
    command: list[str],
    *,
    ngpus: int = 1,
    ncpus: int = 1,
    token: str | None = None,
    files: dict[str, bytes] | None = None,
    options: dict | None = None,
    image: str = "snw/test",
    tag: str = "1",
    content: dict | None = None,
    trainer_id: str = "TSuse",
) -> str:
    """Queue one task. Through the engine's public launch once a worker published the pool;
    else, or with extra ``content`` fields (``exec_mode``, ``support_statistics``: the launch
    does not record them yet), straight into the store. ``token`` is what the pluggable minter
    gives the worker at launch (the hooks are restored after each test by the conftest)."""
    hooks.set_token_hooks(minter=(lambda _task_id, _owner: token) if token else None)
    if content is None and store.redis.hexists(store.keys.pool(pool), "hosts"):
        [task] = Engine(store.redis).launch_chain(
            pool=pool,
            trainer_id="TSuse",
            entity="TS",
            user="TSuse",
            image=image,
            tag=tag,
            command=command,
            ngpus=ngpus,
            ncpus=ncpus,
            options=options,
            files=files,
            exec_mode=True,
        )
        return task.task_id
    task_id = f"{trainer_id}_xxyy_Test_01_{uuid.uuid4().hex[:12]}"
    task = {
        "id": task_id,
        "launched_time": time.time(),
        "pool": pool,
        "service": pool,
        "entity": trainer_id[:2],
        "user": trainer_id,
        "trainer_id": trainer_id,
        "priority": 0,
        "ngpus": ngpus,
        "ncpus": ncpus,
        "type": "exec",
        "queue_score": store.new_queue_scores(pool, 1),
        "content": {
            "docker": {"image": image, "tag": tag, "command": command},
            "options": options or {},
            **(content or {}),
        },
    }
    store.create_tasks([task], files=files)
    return task_id


def processes():
    """``(pid, fields of /proc/<pid>/stat after the command name)`` of every live process."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if fields[0] != "Z":
                yield int(entry), fields


def _children(pid: int) -> list[int]:
    return [child for child, fields in processes() if int(fields[1]) == pid]


def kill_sshd(host: SshdHost) -> None:
    """The host's sshd dies entirely: the listener, then every open session (tasks stay)."""
    sessions = _children(host.process.pid) if host.process else []
    host.stop()
    for pid in sessions:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def kill_tree_under(root: Path) -> None:
    """SIGKILL every process whose working directory is under ``root`` (test cleanup)."""
    root = str(root)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if cwd == root or cwd.startswith(root + "/"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry), signal.SIGKILL)
