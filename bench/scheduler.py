"""Scheduler and listing benchmark for the engine (prints figures; not a timed test).

    REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python bench/scheduler.py

Uses the (empty) Redis database named by REDIS_URL, else an embedded redis-server. Prints:

* ``N decisions/s``: allocations committed per second by scheduling passes over the fake pool
  (4 hosts x 8 GPUs) with 10,000 queued tasks; between passes the allocated tasks are stopped
  (not timed) so the queue keeps draining;
* ``list`` latency p50/p99 for pages of 50 tasks out of 100,000 (prefix, entity scope, status).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

from nmtwizard.api import Engine
from nmtwizard.embedded_redis import EmbeddedRedis
from nmtwizard.lease import PoolLease
from nmtwizard.pool_config import load_pool
from nmtwizard.scheduler import Scheduler

POOL = {
    "name": "bench",
    "description": "4 x 8 GPUs",
    "service": "fake",
    "variables": {
        "server_pool": [{"name": f"gpu{i}", "gpus": list(range(8)), "ncpus": 64} for i in range(4)]
    },
}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def bench_decisions(engine: Engine, config_dir: Path, queued: int) -> float:
    engine.sync_pool_configs(config_dir)
    for i in range(queued):
        engine.launch_chain(
            pool="bench",
            trainer_id="BEusr",
            entity="BE",
            user="BEusr",
            image="nmtwizard/x",
            tag="1",
            command=["train"],
            ngpus=1 + i % 2,
            ncpus=1,
            priority=i % 3,
        )
    hosts = load_pool(config_dir, "bench").hosts
    lease = PoolLease(engine.redis, engine.keys, "bench", "bench", ttl=600)
    lease.try_acquire()
    scheduler = Scheduler(engine.store, "bench")
    decisions, timed = 0, 0.0
    while engine.store.queue_length("bench"):
        start = time.perf_counter()
        allocations = scheduler.run_pass(hosts, lease.token)
        timed += time.perf_counter() - start
        decisions += len(allocations)
        for allocation in allocations:  # the tasks end; their slots return to the pool
            engine.store.terminate(allocation.task_id, "completed", fence=lease.token)
            engine.store.finish(allocation.task_id, lease.token)
    return decisions / timed


def bench_list(engine: Engine, total: int, page: int, rounds: int) -> dict[str, tuple]:
    now = time.time()
    batch = []
    for i in range(total):
        entity = f"E{i % 10}"
        user = "SMusr" if i < page else f"U{i % 1000:04d}"
        batch.append(
            {
                "id": f"{user}_xxyy_Bench_01_{uuid.uuid4().hex[:20]}",
                "type": "train",
                "pool": "bench",
                "entity": "SM" if i < page else entity,
                "user": user,
                "priority": 0,
                "ngpus": 1,
                "ncpus": 1,
                "launched_time": now + i * 1e-4,
                "queue_score": i,
                "content": {"docker": {"image": "x", "tag": "1"}},
            }
        )
        if len(batch) == 1000:
            engine.store.create_tasks(batch)
            batch = []
    queries = {
        f"prefix ({page} of {total})": {"pattern": "SMusr*"},
        f"entity scope ({page} of {total})": {"entities": {"SM"}},
        f"newest {page}, 2 entities": {"entities": {"E1", "E2"}, "limit": page},
        f"status+entity, {page}": {"entities": {"E3"}, "status": "queued", "limit": page},
    }
    results = {}
    for label, query in queries.items():
        samples = []
        for _ in range(rounds):
            start = time.perf_counter()
            listed = engine.list_tasks(**{"limit": page, **query})
            samples.append((time.perf_counter() - start) * 1000)
        assert len(listed) == page, (label, len(listed))
        results[label] = (statistics.median(samples), percentile(samples, 99))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument("--total", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    url = os.environ.get("REDIS_URL")
    embedded = None
    if not url:
        embedded = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="snw-bench-")), appendonly=False)
        url = embedded.start().url
    try:
        client = redis.Redis.from_url(url, decode_responses=True)
        if client.dbsize():
            print(f"refusing to run: {url} is not empty", file=sys.stderr)
            return 2
        engine = Engine(client, namespace="bench:")
        with tempfile.TemporaryDirectory() as directory:
            Path(directory, "bench.json").write_text(json.dumps(POOL))
            rate = bench_decisions(engine, Path(directory), args.queued)
        print(
            f"scheduler: {rate:.0f} decisions/s "
            f"(fake pool 4 hosts x 8 GPUs, {args.queued} queued tasks)"
        )
        client.flushdb()
        for label, (p50, p99) in bench_list(engine, args.total, 50, args.rounds).items():
            print(f"list {label}: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        client.flushdb()
    finally:
        if embedded:
            embedded.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
