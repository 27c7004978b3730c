"""The permission matrix of every task and pool route, for the six personas and anonymous.

Expected answers: 2xx allowed, 403 visible but not allowed, 404 not visible (same as missing),
401 without credentials. No route lets entity B read or change A's tasks or pools, except the
reads A's shared `user` role opens to ``shared_b``.
"""

from __future__ import annotations

import pytest

from tests.tasks_api.conftest import PERSONAS, launch_body

ALL = [*PERSONAS, "anonymous"]


def _row(*codes: int) -> dict[str, int]:
    return dict(zip(ALL, codes, strict=True))


#                       super admin_a trainer_a user_a trainer_b shared_b anon
READ = _row(200, 200, 200, 200, 404, 200, 401)
STOP = _row(200, 200, 200, 403, 404, 403, 401)
CALLBACK = _row(200, 200, 200, 403, 404, 403, 401)
POOL_VIEW = _row(200, 200, 200, 404, 404, 404, 401)
POOL_ADMIN = _row(200, 200, 403, 404, 404, 404, 401)


def _check(clients, expected: dict[str, int], call) -> None:
    answers = {}
    for persona in expected:
        response = call(clients[persona], persona)
        answers[persona] = response.status_code
        if response.status_code >= 400 and response.get("Content-Type", "").startswith(
            "application/json"
        ):
            assert "message" in response.json(), response.content
    assert answers == expected


# =============================================================================
# Tasks
# =============================================================================
@pytest.mark.parametrize(
    "route",
    [
        "/task/status/{id}",
        "/task/log/{id}",
        "/task/log/{id}?offset=0",
    ],
)
def test_reading_a_task(clients, task_a, route):
    _check(clients, READ, lambda c, _p: c.get(route.format(id=task_a)))


def test_listing_shows_only_readable_tasks(clients, task_a, make_task):
    task_b = make_task(owner="trainer_b", pool="bb_pool")
    seen = {}
    for persona in PERSONAS:
        response = clients[persona].get("/task/list/-*")
        assert response.status_code == 200
        seen[persona] = {row["task_id"] for row in response.json()}
    assert seen["superadmin"] == {task_a, task_b}
    assert seen["admin_a"] == seen["trainer_a"] == seen["user_a"] == {task_a}
    assert seen["trainer_b"] == {task_b}
    assert seen["shared_b"] == {task_a, task_b}  # B's own plus A's, through the share
    assert clients["anonymous"].get("/task/list/-*").status_code == 401


def test_terminating_a_task(clients, make_task):
    tasks = {}

    def call(client, persona):
        tasks[persona] = make_task()
        return client.get(f"/task/terminate/{tasks[persona]}")

    _check(clients, STOP, call)


def test_deleting_a_task(clients, make_task, engine):
    def call(client, persona):
        task_id = make_task()
        engine.request_terminate(task_id)  # queued -> stopped at once
        return client.delete(f"/task/{task_id}")

    _check(clients, STOP, call)


def test_terminating_another_users_task_needs_terminate(clients, world, make_task):
    # A's plain user holding terminate_self may stop their own tasks only.
    from accounts import services

    role = services.role_create(
        actor=None, entity=world["user_a"].entity, name="self", permissions=["terminate_self"]
    )
    services.role_assign(actor=None, role=role, user=world["user_a"])
    own = make_task(owner="user_a")
    assert clients["user_a"].get(f"/task/terminate/{own}").status_code == 200
    theirs = make_task(owner="trainer_a")
    assert clients["user_a"].get(f"/task/terminate/{theirs}").status_code == 403
    # ... and A's trainer may not stop A's plain user's task (no terminate)
    other = make_task(owner="user_a")
    assert clients["trainer_a"].get(f"/task/terminate/{other}").status_code == 403


@pytest.mark.parametrize(
    ("method", "route", "body"),
    [
        ("put", "/task/beat/{id}?duration=30", None),
        ("get", "/task/beat/{id}", None),
        ("patch", "/task/log/{id}", b"more log\n"),
        ("post", "/task/log/{id}", b"new log\n"),
        ("post", "/task/file/{id}/out/result.txt", b"data"),
    ],
)
def test_task_callbacks(clients, task_a, method, route, body):
    def call(client, _persona):
        return getattr(client, method)(
            route.format(id=task_a), data=body, content_type="application/octet-stream"
        )

    _check(clients, CALLBACK, call)


def test_task_stat_callback(clients, task_a):
    body = {"task_id": task_a, "start_time": 1.0, "end_time": 5.5, "statistics": {"bleu": 30}}
    _check(clients, CALLBACK, lambda c, _p: c.post(f"/task/stat/{task_a}", body, format="json"))


def test_task_file_download(clients, task_a, engine):
    engine.put_file(task_a, "input.txt", b"hello")
    _check(clients, READ, lambda c, _p: c.get(f"/task/file/{task_a}/input.txt"))


# =============================================================================
# Pools
# =============================================================================
def test_service_list_shows_usable_pools(clients, pools):
    seen = {}
    for persona in PERSONAS:
        response = clients[persona].get("/service/list?all=true")
        assert response.status_code == 200
        seen[persona] = set(response.json())
    assert seen["superadmin"] == {"aa_pool", "bb_pool", "mixed"}
    assert seen["admin_a"] == seen["trainer_a"] == {"aa_pool", "mixed"}
    assert seen["user_a"] == set()
    assert seen["trainer_b"] == {"bb_pool", "mixed"}
    assert seen["shared_b"] == set()  # reading A's tasks is not using A's pools
    assert clients["anonymous"].get("/service/list").status_code == 401


@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("get", "/service/describe/aa_pool"),
        ("get", "/service/check/aa_pool"),
        ("post", "/service/check/aa_pool"),
    ],
)
def test_pool_reads(clients, pools, method, route):
    _check(clients, POOL_VIEW, lambda c, _p: getattr(c, method)(route, {}, format="json"))


def test_launch(clients, pools):
    _check(
        clients,
        POOL_VIEW,
        lambda c, _p: c.post("/task/launch/aa_pool", launch_body(), format="json"),
    )


@pytest.mark.parametrize(
    "route",
    [
        "/service/listconfig/aa_pool",
        "/service/selectconfig/aa_pool/base",
        "/service/enable/aa_pool/h1",
        "/service/disable/aa_pool/h1?message=maintenance",
        "/service/restart/aa_pool",
        "/service/stop/aa_pool",
    ],
)
def test_pool_administration(clients, pools, route):
    _check(clients, POOL_ADMIN, lambda c, _p: c.get(route))


def test_pool_configuration_writes(clients, pools, engine):
    from tests.tasks_api.conftest import fake_pool

    def call(client, persona):
        name = f"cfg-{persona.replace('_', '-')}"
        return client.post(
            f"/service/setconfig/aa_pool/{name}", {"config": fake_pool("aa_pool")}, format="json"
        )

    _check(clients, POOL_ADMIN, call)

    def delete(client, persona):
        return client.get(f"/service/delconfig/aa_pool/cfg-{persona.replace('_', '-')}")

    # only the allowed personas created a configuration, and only they may delete it
    _check(clients, POOL_ADMIN, delete)


def test_stop_needs_stop_config_not_edit_config(clients, world, pools):
    from accounts import services

    editor = services.role_create(
        actor=None, entity=world["trainer_a"].entity, name="editor", permissions=["edit_config"]
    )
    services.role_assign(actor=None, role=editor, user=world["trainer_a"])
    from tests.tasks_api.conftest import client_for

    client = client_for(world["trainer_a"])
    assert client.get("/service/listconfig/aa_pool").status_code == 200
    assert client.get("/service/stop/aa_pool").status_code == 403
    assert client.get("/service/restart/aa_pool").status_code == 403


def test_multi_entity_pool_needs_the_right_on_every_entity(clients, pools):
    # A's administrator holds edit_config on AA only: the mixed pool (AA, BB) is visible, not
    # administrable.
    assert clients["admin_a"].get("/service/describe/mixed").status_code == 200
    assert clients["admin_a"].get("/service/listconfig/mixed").status_code == 403
    assert clients["superadmin"].get("/service/listconfig/mixed").status_code == 200
