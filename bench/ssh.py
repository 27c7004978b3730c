"""Launch latency and start rate of the ``ssh`` service on ``remote_test`` (4 sshd hosts x 4 GPUs).

Starts the 4 hosts itself (real sshd on 127.0.0.1, see ``tests/services/sshd.py``), runs an
in-process engine worker, and queues waves of 16 one-GPU tasks (``sleep 1``): each wave fills
every GPU of the pool. Prints p50/p99 of allocated -> running (the service's launch call over
SSH) and of queued -> running, and tasks started per second.

    REDIS_URL=redis://127.0.0.1:6379/10 .venv/bin/python bench/ssh.py [--waves 4]

Uses the Redis database of REDIS_URL, which must be empty; it is emptied at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis

from nmtwizard.store import TaskStore
from nmtwizard.worker import Worker
from tests.services.remote_pool import enqueue, start_remote_test


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--waves", type=int, default=4)
    args = parser.parse_args()
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/10")
    client = redis.Redis.from_url(url, decode_responses=True)
    if client.dbsize():
        print(f"refusing to run: {url} is not empty", file=sys.stderr)
        return 2
    store = TaskStore(client)
    with tempfile.TemporaryDirectory() as directory:
        remote = start_remote_test(Path(directory) / "hosts")
        try:
            config_dir = Path(directory) / "config"
            config_dir.mkdir()
            (config_dir / "remote_test.json").write_text(json.dumps(remote.data))
            worker = Worker(
                store,
                "remote_test",
                config_dir=config_dir,
                refresh_counter=1,
                tick=0.005,
                check_delay=0.3,
            )
            worker.start()
            launch, queue_to_run, rates = [], [], []
            for _wave in range(args.waves):
                ids = [enqueue(store, "remote_test", ["sleep", "1"], ngpus=1) for _ in range(16)]
                start = time.time()
                while True:
                    worker.run_once()
                    tasks = [store.get(t) for t in ids]
                    if all("running_time" in t for t in tasks):
                        break
                    time.sleep(0.002)
                for task in tasks:
                    launch.append(task["running_time"] - task["allocated_time"])
                    queue_to_run.append(task["running_time"] - task["queued_time"])
                rates.append(len(ids) / (max(t["running_time"] for t in tasks) - start))
                while any(store.get(t)["status"] != "stopped" for t in ids):
                    worker.run_once()
                    time.sleep(0.01)
            worker.wait_idle(10)
            worker.shutdown()
            worker.service.close()
        finally:
            remote.stop()
            client.flushdb()
    ms = 1000.0
    print(f"remote_test: {len(launch)} tasks in {args.waves} waves of 16 (4 hosts x 4 GPUs)")
    print(
        f"launch (allocated -> running): p50 {percentile(launch, 0.5) * ms:.1f} ms, "
        f"p99 {percentile(launch, 0.99) * ms:.1f} ms"
    )
    print(
        f"queued -> running: p50 {percentile(queue_to_run, 0.5) * ms:.1f} ms, "
        f"p99 {percentile(queue_to_run, 0.99) * ms:.1f} ms"
    )
    print(
        f"start rate: {statistics.mean(rates):.1f} tasks started/s (mean of waves; "
        f"best {max(rates):.1f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
