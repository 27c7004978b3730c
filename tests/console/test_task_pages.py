"""The console's pools and tasks pages: engine data, scoped like the task API (personas and
pools of ``tests/tasks_api/conftest.py``: entity A's pool ``aa_pool``, B's ``bb_pool``)."""

import json

import pytest
from django.urls import reverse

from tests.console.conftest import logged_in

pytestmark = pytest.mark.django_db

TASKS = reverse("admin:console-tasks")
POOLS = reverse("admin:console-pools")


def task_url(task_id: str, view: str = "console-task") -> str:
    return reverse(f"admin:{view}", args=[task_id])


def test_tasks_of_ones_entity_only(world, make_task):
    mine = make_task("trainer_a")
    theirs = make_task("trainer_b", pool="bb_pool")
    html = logged_in(world["trainer_a"]).get(TASKS).content.decode()
    assert mine in html and theirs not in html
    html = logged_in(world["superadmin"]).get(TASKS).content.decode()
    assert mine in html and theirs in html


def test_task_filters(world, make_task):
    mine = make_task("trainer_a")
    client = logged_in(world["admin_a"])
    assert mine in client.get(TASKS, {"user": "AATRN"}).content.decode()
    assert mine not in client.get(TASKS, {"user": "AAADM"}).content.decode()
    assert mine in client.get(TASKS, {"pool": "aa_pool", "status": "queued"}).content.decode()
    html = client.get(TASKS, {"status": "running"}).content.decode()
    assert mine not in html and "clear the filters" in html


def test_pools_page_lists_usable_pools(world, pools):
    html = logged_in(world["trainer_a"]).get(POOLS).content.decode()
    assert "aa_pool" in html and "mixed" in html and "bb_pool" not in html
    html = logged_in(world["user_a"]).get(POOLS).content.decode()
    assert "No pool is open to you" in html


def test_task_page_and_terminate(world, make_task, engine):
    task_id = make_task("trainer_a")
    engine.append_log(task_id, "hello from the task\n")
    client = logged_in(world["trainer_a"])
    html = client.get(task_url(task_id)).content.decode()
    assert "hello from the task" in html and 'id="terminate"' in html and "launched" in html
    response = client.post(task_url(task_id, "console-task-terminate"), follow=True)
    assert response.status_code == 200
    assert engine.get_task(task_id)["status"] == "stopped"  # queued tasks stop at once
    assert 'id="terminate"' not in response.content.decode()


def test_other_entitys_task_is_not_found_and_readers_cannot_terminate(world, make_task, engine):
    task_id = make_task("trainer_a")
    other = logged_in(world["trainer_b"])
    assert other.get(task_url(task_id)).status_code == 404
    assert other.post(task_url(task_id, "console-task-terminate")).status_code == 404
    # A plain user of A reads the task but may not stop it.
    reader = logged_in(world["user_a"])
    assert 'id="terminate"' not in reader.get(task_url(task_id)).content.decode()
    response = reader.post(task_url(task_id, "console-task-terminate"), follow=True)
    assert "insufficient credentials" in response.content.decode().lower()
    assert engine.get_task(task_id)["status"] != "stopped"
    assert reader.get(task_url(task_id, "console-task-terminate")).status_code == 405


def test_console_needs_login(db):
    from django.test import Client

    response = Client().get(TASKS)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_pools_page_hides_other_entities_task_ids(world, make_task, engine):
    """A quarantine detail may name a task: B's trainer, on the shared pool, must not read A's."""
    task_id = make_task("trainer_a", pool="mixed", entity="AA")
    quarantine = {"until": 4e9, "message": f"could not stop {task_id}: timeout"}
    engine.redis.hset(engine.keys.quarantine("mixed"), "h2", json.dumps(quarantine))

    seen_by_b = logged_in(world["trainer_b"]).get(POOLS).content.decode()
    seen_by_admin = logged_in(world["superadmin"]).get(POOLS).content.decode()

    assert "mixed" in seen_by_b and task_id not in seen_by_b
    assert task_id in seen_by_admin


def test_an_unknown_status_filter_says_so(world, make_task):
    mine = make_task("trainer_a")

    html = logged_in(world["trainer_a"]).get(TASKS, {"status": "bogus"}).content.decode()

    assert "Unknown status &#x27;bogus&#x27;: showing every status." in html and mine in html
