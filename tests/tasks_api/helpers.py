"""Helpers of the task API tests: driving a real engine worker in-process."""

from __future__ import annotations

import time

from nmtwizard.worker import Worker


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
