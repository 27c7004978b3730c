"""Fixtures shared by every test folder.

Redis: the tests own one Redis database (``REDIS_URL``; an embedded server when unset). It must
be empty or already marked as the test database, so the suite never wipes data it did not
create; it is flushed after each test.
"""

import os

import pytest
import redis

TEST_DB_MARKER = "snw:test-suite-database"


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ["REDIS_URL"]


@pytest.fixture(scope="session")
def _redis_guard(redis_url):
    client = redis.Redis.from_url(redis_url)
    if client.dbsize() and not client.exists(TEST_DB_MARKER):
        pytest.exit(
            f"REDIS_URL {redis_url} holds data the tests did not create; "
            "point it at an empty database (e.g. redis://127.0.0.1:6379/15)",
            returncode=3,
        )
    client.flushdb()
    client.set(TEST_DB_MARKER, "1")
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def redis_client(_redis_guard, redis_url):
    """A client on the test database, emptied (but for the marker) after the test."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.flushdb()
    client.set(TEST_DB_MARKER, "1")
    client.close()


@pytest.fixture(autouse=True)
def _clean_redis_after_test(_redis_guard):
    """Every test leaves the Redis test database as it found it (cache, tokens, tasks)."""
    yield
    _redis_guard.flushdb()
    _redis_guard.set(TEST_DB_MARKER, "1")


@pytest.fixture(autouse=True)
def _permissions_seeded(request):
    """Transactional tests (and ``live_server``) flush every table, the permissions seeded by
    migration ``accounts.0003`` included: put them back (one query when present) instead of
    paying ``serialized_rollback`` on every such test."""
    marker = request.node.get_closest_marker("django_db")
    transactional = marker is not None and marker.kwargs.get("transaction", False)
    names = request.fixturenames
    if not (transactional or "transactional_db" in names or "live_server" in names):
        return
    request.getfixturevalue("transactional_db")
    from accounts.constants import PERMISSION_DESCRIPTIONS
    from accounts.models import Permission

    if Permission.objects.count() != len(PERMISSION_DESCRIPTIONS):
        for code, description in PERMISSION_DESCRIPTIONS.items():
            Permission.objects.get_or_create(code=code, defaults={"description": description})
