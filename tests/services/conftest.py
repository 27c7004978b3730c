"""Fixtures of the service tests: the ``remote_test`` hosts (real sshd), a store, workers."""

from __future__ import annotations

import time

import pytest

from nmtwizard import hooks
from nmtwizard.store import TaskStore
from nmtwizard.worker import Worker
from tests.services.remote_pool import start_remote_test


@pytest.fixture(autouse=True)
def _restore_token_hooks(monkeypatch):
    """``enqueue`` installs a test minter; the process's own hooks come back after each test."""
    monkeypatch.setattr(hooks, "_hooks", dict(hooks._hooks))


@pytest.fixture(scope="session")
def remote_test(tmp_path_factory):
    """The 4 sshd hosts of ``remote_test`` for the whole session (restarted if a test stops one)."""
    pool = start_remote_test(tmp_path_factory.mktemp("remote_test"))
    yield pool
    pool.stop()


@pytest.fixture
def remote_hosts(remote_test):
    """The running hosts; any host a test stopped is started again afterwards."""
    yield remote_test
    for host in remote_test.hosts:
        if host.process is None:
            host.start()


@pytest.fixture
def store(redis_client):
    return TaskStore(redis_client)


class WorkerRunner:
    """Drive a real engine worker in-process, tick by tick, until a condition holds."""

    def __init__(self, store: TaskStore, pool: str, config_dir):
        self.store = store
        self.worker = Worker(
            store,
            pool,
            config_dir=config_dir,
            refresh_counter=1,
            tick=0.01,
            check_delay=0.2,
            quarantine_time=60,
        )
        self.worker.start()

    def until(self, predicate, timeout: float = 15.0, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.worker.run_once()
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}")

    def status(self, task_id: str) -> str:
        return self.store.get(task_id)["status"]

    def stopped(self, task_id: str, timeout: float = 15.0) -> dict:
        self.until(lambda: self.status(task_id) == "stopped", timeout, f"{task_id} stopped")
        return self.store.get(task_id)

    def running(self, task_id: str, timeout: float = 15.0) -> dict:
        self.until(lambda: self.status(task_id) == "running", timeout, f"{task_id} running")
        return self.store.get(task_id)

    def log(self, task_id: str) -> str:
        return self.store.read_log(task_id)[0].decode()

    def close(self) -> None:
        self.worker.wait_idle(10)
        self.worker.shutdown()
        if hasattr(self.worker.service, "close"):
            self.worker.service.close()


@pytest.fixture
def make_worker(store):
    runners = []

    def make(pool: str, config_dir) -> WorkerRunner:
        runner = WorkerRunner(store, pool, config_dir)
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.close()
