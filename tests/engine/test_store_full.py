"""A worker on a full Redis (``maxmemory``, ``noeviction``) stands by instead of crashing, and
schedules again once memory is freed. Runs a bounded redis-server of its own."""

from __future__ import annotations

import logging

import pytest
import redis

from nmtwizard.api import Engine
from nmtwizard.embedded_redis import EmbeddedRedis
from nmtwizard.exceptions import StoreFull
from tests.engine.conftest import run_until
from tests.helpers import RedisFiller


@pytest.fixture
def bounded(tmp_path):
    with EmbeddedRedis(tmp_path / "redis", appendonly=False, maxmemory="64mb") as server:
        yield server


@pytest.fixture
def engine(bounded):
    """The engine fixtures (``launch``, ``make_worker``) on the bounded server."""
    client = redis.Redis.from_url(bounded.url, decode_responses=True)
    yield Engine(client)
    client.close()


def test_a_worker_stands_by_while_redis_is_full_then_schedules_again(
    bounded, engine, config_dir, make_worker, launch, caplog
):
    engine.sync_pool_configs(config_dir)
    worker = make_worker()
    first = launch()[0]
    run_until(worker, lambda: engine.get_task(first)["status"] == "running")
    filler = RedisFiller(bounded.url)
    filler.fill()
    with pytest.raises(StoreFull):
        launch()

    with caplog.at_level(logging.WARNING, logger="nmtwizard.worker"):
        for _ in range(5):
            worker._last_heartbeat = 0.0  # a heartbeat (a write) on every tick
            worker.run_once()
    warnings = [record.getMessage() for record in caplog.records]
    assert warnings.count("pool pool: Redis is full (maxmemory); standing by") == 1
    assert engine.get_task(first)["status"] == "running"

    filler.free()
    second = launch()[0]
    run_until(worker, lambda: engine.get_task(second)["status"] == "running")
    assert worker.lease.held
