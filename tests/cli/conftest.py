"""Fixtures of the CLI tests: ``snw`` run by click's CliRunner against a live test server.

Personas: ``AATRN`` (trainer of entity AA), ``AAADM`` (its lingadmin), ``AAUSR`` (plain user
of AA: may read, not launch), ``BBTRN`` (trainer of entity BB). Pool ``aa_pool`` (fake
service, entity AA). The ``worker`` fixture runs a real engine worker for it in a thread.
"""

from __future__ import annotations

import threading
import traceback

import pytest
from click.testing import CliRunner

from cli.main import cli
from tests.helpers import free_port
from tests.tasks_api.conftest import fake_pool, write_pools

PASSWORD = "secret-password"


class Snw:
    """Runs ``snw`` in-process with a given environment; never lets a traceback through."""

    def __init__(self, env: dict):
        self.env = env
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, ok: bool | None = True, **env):
        """``ok``: True expects success, False failure, None either."""
        result = self.runner.invoke(cli, list(args), input=input, env={**self.env, **env})
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            details = "".join(traceback.format_exception(*result.exc_info))
            raise AssertionError(f"snw {' '.join(args)} raised:\n{details}")
        assert "Traceback" not in result.output
        if ok is True:
            assert result.exit_code == 0, f"snw {' '.join(args)}: {result.output}"
        elif ok is False:
            assert result.exit_code != 0, f"snw {' '.join(args)} succeeded: {result.output}"
        return result


@pytest.fixture
def token_file(tmp_path):
    return tmp_path / "home" / ".launcher_token"


@pytest.fixture
def snw_offline(tmp_path, token_file):
    """``snw`` with an isolated HOME and token file, pointed at nothing in particular."""
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "SNW_TOKEN_FILE": str(token_file), "SNW_TOKEN": None}
    env.update({"SNW_URL": None, "SNW_JSON": None, "SNW_TID": None, "SNW_TIMEOUT": "20"})
    return Snw(env)


@pytest.fixture
def snw(live_server, snw_offline):
    """``snw`` pointed at the live test server (real database and Redis)."""
    snw_offline.env["SNW_URL"] = live_server.url
    return snw_offline


@pytest.fixture
def people(transactional_db, redis_client):
    from tests.factories import EntityFactory, UserFactory

    aa = EntityFactory(entity_code="AA", name="Entity A")
    bb = EntityFactory(entity_code="BB", name="Entity B")
    return {
        "AATRN": UserFactory(entity=aa, user_code="TRN", roles=["trainer"]),
        "AAUSR": UserFactory(entity=aa, user_code="USR", roles=["user"]),
        "AAADM": UserFactory(entity=aa, user_code="ADM", roles=["lingadmin"]),
        "BBTRN": UserFactory(entity=bb, user_code="TRN", roles=["trainer"]),
    }


@pytest.fixture
def login_as(people, token_file):
    """Save a fresh token of a persona where ``snw login`` would (as if it had logged in)."""
    from accounts.tokens import temporary_token_create
    from cli.auth import save_token

    def login(trainer_id: str, **kwargs) -> str:
        issued = temporary_token_create(user=people[trainer_id], **kwargs)
        save_token(token_file, issued.token)
        return issued.token

    return login


@pytest.fixture
def engine(redis_client):
    from tasks_api.engine import get_engine

    return get_engine()


@pytest.fixture
def pool_dir(engine, tmp_path):
    directory = write_pools(tmp_path / "config", [fake_pool("aa_pool")])
    engine.sync_pool_configs(directory)
    return directory


@pytest.fixture
def worker(engine, pool_dir):
    """A real engine worker of ``aa_pool``, running in a thread for the test's duration."""
    from nmtwizard.worker import Worker

    running = Worker(
        engine.store, "aa_pool", config_dir=pool_dir, tick=0.02, refresh_counter=1, check_delay=0.1
    )
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    yield running
    running.request_exit(0)
    thread.join(30)


@pytest.fixture
def dead_url():
    """A URL nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"
