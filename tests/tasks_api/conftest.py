"""Personas, pools and helpers of the task API tests.

Personas (entity A = ``AA``, entity B = ``BB``): the super admin, A's administrator (lingadmin
plus a pool-admin role with edit_config and stop_config), a trainer and a plain user of A, a
trainer of B, and a user of B holding ``user`` on A through a role A shares with B.
Pools: ``aa_pool`` (entity AA, by its name), ``bb_pool`` (BB), ``mixed`` (config lists AA, BB).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from accounts import services
from accounts.models import Role
from accounts.tokens import temporary_token_create
from tasks_api.engine import get_engine
from tests.engine.conftest import DEFAULT
from tests.factories import EntityFactory, UserFactory

__all__ = ["DEFAULT", "PERSONAS", "client_for", "fake_pool", "launch_body", "write_pools"]

PERSONAS = ["superadmin", "admin_a", "trainer_a", "user_a", "trainer_b", "shared_b"]


def fake_pool(name: str, **extra) -> dict:
    return {
        "name": name,
        "description": f"{name} test pool",
        "service": "fake",
        "variables": {
            "server_pool": [
                {"name": "h1", "gpus": [0, 1], "ncpus": 4},
                {"name": "h2", "gpus": [0, 1], "ncpus": 4},
            ],
            "fake": {"duration": 60},
        },
        **extra,
    }


def write_pools(directory: Path, pools: list[dict], default: dict | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "default.json").write_text(json.dumps(default or DEFAULT))
    for pool in pools:
        (directory / f"{pool['name']}.json").write_text(json.dumps(pool))
    return directory


def launch_body(**changes) -> dict:
    body = {
        "docker": {
            "registry": "auto",
            "image": "nmtwizard/echo",
            "tag": "v1",
            "command": ["train"],
        },
        "options": {},
        "ngpus": 1,
    }
    body.update(changes)
    return body


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {temporary_token_create(user=user).token}")
    return client


@pytest.fixture
def engine(redis_client):
    return get_engine()


@pytest.fixture
def pools(engine, tmp_path):
    directory = write_pools(
        tmp_path / "config",
        [
            fake_pool("aa_pool"),
            fake_pool("bb_pool"),
            fake_pool("mixed", entities={"AA": {}, "BB": {}}),
        ],
    )
    engine.sync_pool_configs(directory)
    return directory


@pytest.fixture
def world(db, redis_client):
    """Every persona (see the module docstring), by name."""
    sa = services.entity_create(
        actor=None, entity_code=settings.SNW_SUPER_ENTITY, name="Super entity"
    )
    aa = EntityFactory(entity_code="AA", name="Entity A")
    bb = EntityFactory(entity_code="BB", name="Entity B")
    pool_admin = services.role_create(
        actor=None, entity=aa, name="pooladmin", permissions=["edit_config", "stop_config"]
    )
    services.share_role_create(actor=None, role=Role.objects.get(entity=aa, name="user"), entity=bb)
    read_aa = services.role_create(
        actor=None, entity=bb, name="read-aa", permissions=[("user", aa)]
    )
    return {
        "superadmin": UserFactory(entity=sa, user_code="ADM", roles=["admin"]),
        "admin_a": UserFactory(entity=aa, user_code="ADM", roles=["lingadmin", pool_admin]),
        "trainer_a": UserFactory(entity=aa, user_code="TRN", roles=["trainer"]),
        "user_a": UserFactory(entity=aa, user_code="USR", roles=["user"]),
        "trainer_b": UserFactory(entity=bb, user_code="TRN", roles=["trainer"]),
        "shared_b": UserFactory(entity=bb, user_code="SHR", roles=["user", read_aa]),
    }


@pytest.fixture
def clients(world):
    """An authenticated API client per persona, plus ``anonymous``."""
    result = {name: client_for(user) for name, user in world.items()}
    result["anonymous"] = APIClient()
    return result


@pytest.fixture
def task_a(clients, pools):
    """A queued task of A's trainer on ``aa_pool``."""
    response = clients["trainer_a"].post("/task/launch/aa_pool", launch_body(), format="json")
    assert response.status_code == 200, response.content
    return response.json().split("\t")[1]


@pytest.fixture
def make_task(engine, pools, world):
    """Create a task of ``owner`` (default A's trainer) directly through the engine."""

    def make(owner: str = "trainer_a", pool: str = "aa_pool", **changes) -> str:
        user = world[owner]
        args = {
            "pool": pool,
            "trainer_id": user.trainer_id,
            "entity": pool[:2].upper(),
            "user": user.trainer_id,
            "image": "nmtwizard/echo",
            "tag": "v1",
            "command": ["train"],
            "ngpus": 1,
        }
        args.update(changes)
        return engine.launch_chain(**args)[0].task_id

    return make
