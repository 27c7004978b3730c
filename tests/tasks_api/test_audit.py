"""Launching, terminating and deleting a task leave one audit row, seen by the task's entity;
replacing a pool's configuration or the shared base leaves rows seen by the pool's entities or
the super entity."""

from __future__ import annotations

import json

import pytest
from django.db import OperationalError, connection

from accounts import policy
from accounts.models import AuditEvent, Entity
from accounts.tokens import mint_task_token
from tests.factories import UserFactory
from tests.tasks_api.conftest import DEFAULT, client_for, fake_pool, launch_body


def _rows(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_launch_is_audited_under_the_owner_entity_without_the_command(clients, pools, world):
    body = launch_body(iterations=2, options={"secret": "s3cr3t"}, ncpus=2)
    body["docker"]["command"] = ["train", "--password", "hunter2"]
    response = clients["trainer_a"].post("/task/launch/aa_pool", body, format="json")
    assert response.status_code == 200, response.content
    first, second = (line.split("\t")[1] for line in response.json())

    [row] = _rows("task.launch")
    assert (row.actor, row.entity_code, row.entity.entity_code) == (world["trainer_a"], "AA", "AA")
    assert (row.object_type, row.object_id) == ("Task", first)
    assert row.after == {
        "pool": "aa_pool",
        "image": "nmtwizard/echo:v1",
        "ngpus": 1,
        "ncpus": 2,
        "priority": 0,
        "tasks": [first, second],
    }
    stored = str(row.after) + str(row.before) + row.object_repr
    assert "hunter2" not in stored and "s3cr3t" not in stored


def test_a_launch_on_a_shared_pool_is_audited_under_the_chosen_entity(clients, pools):
    response = clients["superadmin"].post(
        "/task/launch/mixed", launch_body(entity_owner="bb"), format="json"
    )
    assert response.status_code == 200, response.content

    [row] = _rows("task.launch")
    assert (row.actor_repr, row.entity_code) == ("SAADM", "BB")


def test_refused_launches_leave_no_row(clients, pools):
    bad = clients["trainer_a"].post("/task/launch/aa_pool", launch_body(ngpus=-1), format="json")
    foreign = clients["trainer_b"].post("/task/launch/aa_pool", launch_body(), format="json")

    assert bad.status_code == 400 and foreign.status_code in (403, 404)
    assert not AuditEvent.objects.filter(object_type="Task").exists()


def test_terminate_and_delete_are_audited_with_the_state_before(clients, task_a, world):
    admin = clients["admin_a"]
    assert admin.get(f"/task/terminate/{task_a}?phase=cancelled").status_code == 200
    assert admin.get(f"/task/terminate/{task_a}").status_code == 200  # already stopped: no row
    assert admin.delete(f"/task/{task_a}").status_code == 200

    [terminate] = _rows("task.terminate")
    assert (terminate.actor, terminate.entity_code, terminate.object_id) == (
        world["admin_a"],
        "AA",
        task_a,
    )
    assert terminate.before == {"status": "queued"}
    assert terminate.after == {"status": "stopped", "phase": "cancelled"}
    [delete] = _rows("task.delete")
    assert delete.before["status"] == "stopped" and delete.before["pool"] == "aa_pool"
    assert delete.before["message"] == "cancelled" and delete.after is None


def test_a_refused_delete_leaves_no_row(clients, task_a, engine):
    from tests.tasks_api.helpers import run_worker_until

    run_worker_until(engine, "aa_pool", lambda: engine.get_task(task_a)["status"] == "running")
    assert clients["trainer_a"].delete(f"/task/{task_a}").status_code == 409
    assert clients["trainer_b"].delete(f"/task/{task_a}").status_code == 404

    assert not _rows("task.delete")


@pytest.mark.parametrize(("admin_of", "sees"), [("AA", True), ("BB", False)])
def test_task_rows_are_seen_by_the_task_entity_administrators_only(clients, task_a, admin_of, sees):
    admin = UserFactory(
        entity=Entity.objects.get(entity_code=admin_of), user_code="AUD", roles=["lingadmin"]
    )

    visible = policy.audit_events_for(admin).filter(object_type="Task")

    assert visible.filter(object_id=task_a, action="task.launch").exists() is sees


def test_a_lost_audit_row_does_not_fail_a_launch_that_happened(clients, pools, engine, caplog):
    """The engine has queued the task when the row is written: a 500 then would invite the
    client to launch again. The failure is logged instead."""

    def audit_table_down(execute, sql, params, many, context):
        if "accounts_auditevent" in sql and sql.lstrip().upper().startswith("INSERT"):
            raise OperationalError("audit table unavailable")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(audit_table_down):
        response = clients["trainer_a"].post("/task/launch/aa_pool", launch_body(), format="json")

    assert response.status_code == 200, response.content
    task_id = response.json().split("\t")[1]
    assert engine.get_task(task_id)["status"] == "queued"
    assert not AuditEvent.objects.filter(object_type="Task").exists()
    assert f"audit row lost: task.launch of {task_id} by AATRN" in caplog.text


def test_a_task_reporting_its_own_end_is_not_a_users_action(clients, task_a, world):
    own = client_for(None)
    own.credentials(HTTP_AUTHORIZATION=f"Bearer {mint_task_token(task_a, world['trainer_a'])}")

    assert own.get(f"/task/terminate/{task_a}?phase=completed").status_code == 200

    assert not _rows("task.terminate")


def test_replacing_a_pool_configuration_is_audited_under_each_entity_of_the_pool(
    clients, pools, world
):
    posted = fake_pool("mixed", entities={"AA": {}, "BB": {}}, storages={"s3": {"secret": "k3y"}})
    answer = clients["superadmin"].post("/service/configs/mixed", {"config": json.dumps(posted)})
    assert answer.status_code == 200, answer.content

    rows = _rows("pool.config_replace")
    assert [(r.entity_code, r.actor, r.object_type, r.object_id) for r in rows] == [
        ("AA", world["superadmin"], "Pool", "mixed"),
        ("BB", world["superadmin"], "Pool", "mixed"),
    ]
    assert rows[0].before == {"current": "base"}
    assert rows[0].after["current"] == "posted" and isinstance(rows[0].after["updated_at"], float)
    assert "k3y" not in str(rows[0].before) + str(rows[0].after) + rows[0].object_repr


def test_named_configuration_changes_are_audited_under_the_pool_entity(clients, pools, world):
    admin = clients["admin_a"]
    config = json.dumps(fake_pool("aa_pool", description="bigger"))
    assert admin.post("/service/setconfig/aa_pool/big", {"config": config}).status_code == 200
    assert admin.get("/service/selectconfig/aa_pool/big").status_code == 200
    assert admin.get("/service/selectconfig/aa_pool/base").status_code == 200
    assert admin.get("/service/delconfig/aa_pool/big").status_code == 200
    assert admin.get("/service/delconfig/aa_pool/big").status_code == 404  # no row

    rows = list(AuditEvent.objects.filter(object_type="Pool").order_by("id"))
    assert [(r.action, r.entity_code, r.actor, r.object_id) for r in rows] == [
        ("pool.config_set", "AA", world["admin_a"], "aa_pool"),
        ("pool.config_select", "AA", world["admin_a"], "aa_pool"),
        ("pool.config_select", "AA", world["admin_a"], "aa_pool"),
        ("pool.config_delete", "AA", world["admin_a"], "aa_pool"),
    ]
    assert [(r.before, r.after) for r in rows] == [
        (None, {"name": "big"}),
        ({"current": "base"}, {"current": "big"}),
        ({"current": "big"}, {"current": "base"}),
        ({"name": "big"}, None),
    ]


def test_refused_pool_configurations_leave_no_row(clients, pools):
    admin = clients["admin_a"]
    bad = admin.post("/service/configs/aa_pool", {"config": json.dumps({"variables": []})})
    foreign = admin.post("/service/configs/mixed", {"config": json.dumps(fake_pool("mixed"))})

    assert (bad.status_code, foreign.status_code) == (400, 403)
    assert not AuditEvent.objects.filter(object_type="Pool").exists()


def test_replacing_the_base_configuration_is_audited_under_the_super_entity(clients, pools, world):
    base = {**DEFAULT, "callback_interval": 30}
    answer = clients["superadmin"].post("/service/configs/_base", {"config": json.dumps(base)})
    assert answer.status_code == 200, answer.content
    refused = clients["superadmin"].post("/service/configs/_base", {"config": '{"variables": []}'})
    assert refused.status_code == 400

    [row] = _rows("pool.base_config_replace")
    assert (row.entity_code, row.actor, row.object_type, row.object_id) == (
        "SA",
        world["superadmin"],
        "PoolBaseConfig",
        "_base",
    )
    assert row.before is None and row.after == {"changed": ["callback_interval"]}
