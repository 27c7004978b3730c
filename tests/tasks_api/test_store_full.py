"""A full Redis (``maxmemory`` with ``noeviction``) answers 507 with a plain message, stores
nothing half-written, and everything works again once memory is freed.

These tests run a redis-server of their own (the embedded one ``make run`` uses) on a free
port, so its limit can be lowered without touching the shared test server.
"""

from __future__ import annotations

import base64
import copy
import json

import pytest
import redis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from rest_framework.test import APIClient

from accounts.api.exceptions import STORE_FULL_MESSAGE
from nmtwizard.embedded_redis import EmbeddedRedis
from nmtwizard.exceptions import StoreFull, out_of_memory
from snw_site.middleware import StoreFullMiddleware
from tasks_api.engine import get_engine, reset_engine
from tests.helpers import RedisFiller
from tests.tasks_api.conftest import client_for, fake_pool, launch_body, write_pools
from tests.tasks_api.helpers import run_worker_until, token_client


@pytest.fixture
def small_redis(tmp_path, settings):
    """The launcher on a Redis of its own, bounded (``maxmemory``, ``noeviction``)."""
    with EmbeddedRedis(tmp_path / "redis", appendonly=False, maxmemory="64mb") as server:
        caches = copy.deepcopy(settings.CACHES)
        caches["default"]["LOCATION"] = server.url
        settings.CACHES = caches
        settings.REDIS_URL = server.url
        reset_engine()
        try:
            yield RedisFiller(server.url)
        finally:
            reset_engine()


@pytest.fixture
def launched(small_redis, world, tmp_path):
    """A pool, A's trainer with a client, and one task running since before Redis filled up."""
    engine = get_engine()
    engine.sync_pool_configs(write_pools(tmp_path / "config", [fake_pool("aa_pool")]))
    trainer = client_for(world["trainer_a"])
    response = trainer.post("/task/launch/aa_pool", launch_body(), format="json")
    assert response.status_code == 200, response.content
    task_id = response.json().split("\t")[1]
    run_worker_until(engine, "aa_pool", lambda: engine.get_task(task_id)["status"] == "running")
    return engine, trainer, token_client(engine, task_id), task_id


def _keys(filler: RedisFiller) -> dict[bytes, bytes]:
    """Every key but the filler, with its type."""
    return {
        key: filler.client.type(key)
        for key in filler.client.scan_iter()
        if not key.startswith(b"filler:")
    }


def _login(world) -> APIClient:
    """A client logging in as A's trainer with a password (``/auth/token``)."""
    basic = base64.b64encode(f"{world['trainer_a'].trainer_id}:secret-password".encode())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {basic.decode()}")
    return client


def _refused(response) -> None:
    assert response.status_code == 507, response.content
    assert response.json() == {"message": STORE_FULL_MESSAGE}


def test_a_full_redis_refuses_writes_with_507_and_keeps_reads(small_redis, launched, world):
    engine, trainer, task_token, task_id = launched
    small_redis.fill()
    before = _keys(small_redis)
    listed = trainer.get("/task/list/*").json()

    _refused(trainer.post("/task/launch/aa_pool", launch_body(), format="json"))
    _refused(task_token.put(f"/task/beat/{task_id}?duration=30"))
    _refused(_login(world).get("/auth/token"))
    _refused(trainer.get(f"/task/terminate/{task_id}"))
    # reads keep working: a user follows the tasks already there
    status = trainer.get(f"/task/status/{task_id}")
    assert status.status_code == 200 and status.json()["status"] == "running"
    assert trainer.get("/task/list/*").json() == listed
    # nothing half-written: no key appeared, none changed type
    assert _keys(small_redis) == before
    assert engine.get_task(task_id)["status"] == "running"

    small_redis.free()
    launch = trainer.post("/task/launch/aa_pool", launch_body(), format="json")
    assert launch.status_code == 200, launch.content
    assert task_token.put(f"/task/beat/{task_id}?duration=30").status_code == 200
    token = _login(world).get("/auth/token")
    assert token.status_code == 200 and token.json()["token"].startswith("_T_")
    assert len(trainer.get("/task/list/*").json()) == len(listed) + 1


def test_a_launch_that_fills_redis_midway_leaves_no_partial_task(small_redis, launched):
    """Redis has room for the first writes of the launch, not for its 1 MB file: the launch's
    MULTI/EXEC is discarded whole."""
    engine, trainer, _, _ = launched
    small_redis.fill(headroom=128 << 10)
    before = _keys(small_redis)
    tasks = engine.redis.zcard(engine.keys.ids())
    seq = int(engine.redis.get(engine.keys.seq("aa_pool")))

    upload = SimpleUploadedFile("corpus.txt", b"y" * (1 << 20))
    response = trainer.post(
        "/task/launch/aa_pool",
        {"content": json.dumps(launch_body()), "corpus.txt": upload},
        format="multipart",
    )

    _refused(response)
    # the launch got as far as its transaction (its queue number was taken), which was discarded
    assert int(engine.redis.get(engine.keys.seq("aa_pool"))) == seq + 1
    assert engine.redis.zcard(engine.keys.ids()) == tasks
    assert _keys(small_redis) == before


def test_the_engine_names_a_full_store():
    oom = redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")
    script = redis.exceptions.ResponseError(
        "Error running script (call to f_1): @user_script:1: -OOM command not allowed when "
        "used memory > 'maxmemory'."
    )
    assert out_of_memory(oom) and out_of_memory(script) and out_of_memory(StoreFull("full"))
    assert not out_of_memory(redis.exceptions.ResponseError("WRONGTYPE"))
    try:  # re-raised "from None", as the token store does: still found in the chain
        try:
            raise script
        except redis.RedisError:
            raise RuntimeError("token store unavailable") from None
    except RuntimeError as wrapped:
        assert out_of_memory(wrapped)


def test_plain_django_views_answer_a_full_store_with_507():
    middleware = StoreFullMiddleware(lambda request: None)
    request = RequestFactory().get("/console/tasks/")
    oom = redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")

    response = middleware.process_exception(request, oom)

    assert response.status_code == 507
    assert response.content.decode().strip() == STORE_FULL_MESSAGE
    assert middleware.process_exception(request, ValueError("other")) is None
