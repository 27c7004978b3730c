"""Helpers of the task API tests: a task token client, a real engine worker in-process."""

from __future__ import annotations

import time

from rest_framework.test import APIClient

from nmtwizard import hooks
from nmtwizard.worker import Worker


def token_client(engine, task_id: str) -> APIClient:
    """A client holding the token the worker mints for the task (the installed hook)."""
    task = engine.get_task(task_id)
    token = hooks.mint_token(task_id, {"trainer_id": task["user"], "entity": task["entity"]})
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def run_worker_until(engine, pool: str, predicate, timeout: float = 20.0, config_dir=None):
    """Tick a real worker of ``pool`` until ``predicate()`` holds (generous deadline)."""
    worker = Worker(
        engine.store, pool, config_dir=config_dir, refresh_counter=1, tick=0.01, check_delay=0.2
    )
    worker.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            worker.run_once()
            if predicate():
                return
            time.sleep(0.01)
        raise AssertionError("condition not reached in time")
    finally:
        worker.wait_idle(10)
        worker.shutdown()
