"""Real worker processes: SIGKILL of the active worker, standby takeover, nothing lost."""

import os
import signal
import subprocess
import sys
import time

import pytest

from .conftest import status

pytestmark = pytest.mark.slow


def start_worker(redis_url, config_dir):
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "CONFIG_DIR": str(config_dir),
        "REFRESH_COUNTER": "2",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("LAUNCHER_CONFIG", None)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nmtwizard.worker",
            "pool",
            "--tick",
            "0.01",
            "--lease-ttl",
            "0.5",
            "--check-delay",
            "0.05",
        ],
        env=env,
    )


def wait(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("kill_after", [0.3, 0.75])
def test_sigkill_of_active_worker_loses_nothing(engine, redis_url, config_dir, launch, kill_after):
    engine.sync_pool_configs(config_dir)
    ids = [
        launch(ngpus=1 + i % 2, options={"fake": {"duration": 0.1, "launch_delay": 0.05}})[0]
        for i in range(16)
    ]
    active = start_worker(redis_url, config_dir)
    standby = None
    try:
        assert wait(lambda: engine.describe_pool("pool")["leader"], 10)
        standby = start_worker(redis_url, config_dir)
        time.sleep(kill_after)  # somewhere in the middle of launches and polls
        os.kill(active.pid, signal.SIGKILL)
        active.wait()
        assert wait(lambda: all(status(engine, t) == "stopped" for t in ids), 30)
    finally:
        for process in (active, standby):
            if process and process.poll() is None:
                process.terminate()
                process.wait(10)
    starts = engine.redis.hgetall(engine.keys.fake_starts("pool"))
    assert set(starts) == set(ids) and set(starts.values()) == {"1"}  # each launched once
    assert [engine.get_task(t)["message"] for t in ids] == ["completed"] * len(ids)
    assert not engine.redis.keys("snw:gpus:*") and not engine.redis.keys("snw:cpus:*")
    assert engine.describe_pool("pool")["usage"] == {"gpus": 0, "cpus": 0}
