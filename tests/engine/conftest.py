"""Engine fixtures: an Engine on the test Redis db, pool config dirs and in-process workers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from nmtwizard import hooks
from nmtwizard.api import Engine
from nmtwizard.worker import Worker

DEFAULT = {
    "description": "",
    "variables": {},
    "docker": {
        "registries": {"hub": {"type": "dockerhub", "default_for": ["nmtwizard"]}},
        "mount": [],
        "envvar": {},
    },
    "storages": {},
    "cpu_allocation": {"gpu_task": 1, "exec_task": 1},
    "callback_interval": 60,
    "ttl_policy": [],
}


# default.json in nmt-wizard's keys (reference §1.6): registries, envvar.specific, the launcher
# storage, callback_url.
NMTWIZARD_DEFAULT = {
    **DEFAULT,
    "docker": {
        "registries": {"dockerhub": {"type": "dockerhub", "uri": "", "default_for": ["nmtwizard"]}},
        "envvar": {"specific": {"nmtwizard/google_translate": {"credentials": "{}"}}},
    },
    "storages": {
        "launcher": {
            "type": "http",
            "get_pattern": "<CALLBACK_URL>/task/file/<TASK_ID>/%s",
            "post_pattern": "<CALLBACK_URL>/task/file/<TASK_ID>/%s",
        }
    },
    "callback_url": "http://launcher:5000",
}


def fake_pool(name="pool", hosts=None, **fake) -> dict:
    """A fake pool definition: ``hosts`` is ``{host: (gpu ids, ncpus)}`` (default 2 x 2 GPUs)."""
    hosts = hosts or {"h1": ([0, 1], 4), "h2": ([0, 1], 4)}
    return {
        "name": name,
        "description": f"{name} test pool",
        "service": "fake",
        "variables": {
            "server_pool": [{"name": h, "gpus": g, "ncpus": c} for h, (g, c) in hosts.items()],
            "fake": {"duration": 60, **fake},
        },
    }


def write_config(directory: Path, pool: dict, default: dict | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "default.json").write_text(json.dumps(default or DEFAULT))
    (directory / f"{pool['name']}.json").write_text(json.dumps(pool))
    return directory


@pytest.fixture(autouse=True)
def _no_token_hooks(monkeypatch):
    """Engine tests run without the accounts layer's minter (Django may have installed it)."""
    monkeypatch.setitem(hooks._hooks, "minter", lambda task_id, owner: None)
    monkeypatch.setitem(hooks._hooks, "revoker", lambda task_id: None)


@pytest.fixture
def engine(redis_client) -> Engine:
    return Engine(redis_client)


@pytest.fixture
def config_dir(tmp_path) -> Path:
    return write_config(tmp_path / "config", fake_pool())


@pytest.fixture
def make_worker(engine, config_dir) -> Callable[..., Worker]:
    workers: list[Worker] = []

    def make(pool: str = "pool", directory: Path | None = None, **kwargs) -> Worker:
        kwargs.setdefault("tick", 0.01)
        kwargs.setdefault("refresh_counter", 1)
        kwargs.setdefault("check_delay", 0.05)
        kwargs.setdefault("quarantine_time", 60)
        worker = Worker(engine.store, pool, config_dir=directory or config_dir, **kwargs)
        worker.start()
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.shutdown()


@pytest.fixture
def launch(engine) -> Callable[..., list[str]]:
    """Launch with sensible defaults: ``launch(ngpus=1, options={"fake": {...}})``."""

    def do(**kwargs) -> list[str]:
        args = {
            "pool": "pool",
            "trainer_id": "ABusr",
            "entity": "AB",
            "user": "ABusr",
            "image": "nmtwizard/echo",
            "tag": "latest",
            "command": ["train"],
            "ngpus": 1,
        }
        args.update(kwargs)
        return [task.task_id for task in engine.launch_chain(**args)]

    return do


def run_until(workers, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Tick the workers until ``predicate()`` holds; fail after ``timeout`` seconds."""
    workers = workers if isinstance(workers, list | tuple) else [workers]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in workers:
            worker.run_once()
        if predicate():
            for worker in workers:
                worker.wait_idle()
            return
        time.sleep(0.005)
    raise AssertionError("condition not reached in time")


def status(engine: Engine, task_id: str) -> str:
    return engine.get_task(task_id)["status"]


@pytest.fixture
def token_hooks():
    """Token hooks that record what the worker mints and revokes: ``(minted, revoked)``."""
    minted, revoked = [], []
    previous = dict(hooks._hooks)
    hooks.set_token_hooks(
        lambda tid, owner: minted.append((tid, owner)) or f"tok-{tid[-4:]}", revoked.append
    )
    yield minted, revoked
    hooks._hooks.update(previous)
