"""Browser tests of the console: Playwright driving Debian's Chromium against a live server.

* An entity administrator logs in, creates a user, puts them in a group holding the ``trainer``
  role, and sees no trace of another entity on the changelist, the form choices and filters.
* A trainer logs in, sees their task list and terminates a running task (a real engine worker
  of the ``fake`` service runs in a thread).

Screenshots of every page land in ``tests/artifacts/console/``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.conf import settings

from accounts import services
from accounts.models import Group, Role, User
from nmtwizard.worker import Worker
from tasks_api.engine import get_engine
from tests.factories import EntityFactory, UserFactory
from tests.helpers import until
from tests.tasks_api.conftest import fake_pool, write_pools

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "console"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
B_MARKERS = ("BBADM", "BBUSR", "bravo-team", "Tenant B", "Bravoname", "BB/")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing: apt-get install chromium"
    ),
]


@pytest.fixture
def browser(monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    # Playwright's sync API runs an event loop in this thread; the ORM calls of the test body
    # are still synchronous and safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def login(browser, base: str, trainer_id: str, shots: str):
    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{base}/admin/login/")
    assert "SNW" in page.title()
    page.screenshot(path=ARTIFACTS / f"{shots}-01-login.png")
    page.fill("#id_username", trainer_id)
    page.fill("#id_password", "secret-password")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")
    page.screenshot(path=ARTIFACTS / f"{shots}-02-index.png", full_page=True)
    return page


def assert_no_trace_of_b(page, where: str):
    html = page.content()
    leaked = [m for m in B_MARKERS if m in html]
    assert not leaked, f"{where} shows {leaked}"


@pytest.mark.django_db(transaction=True)
def test_entity_admin_creates_a_trainer_and_sees_only_their_entity(live_server, browser):
    services.entity_create(actor=None, entity_code=settings.SNW_SUPER_ENTITY, name="Super")
    aa = EntityFactory(entity_code="AA", name="Tenant A")
    bb = EntityFactory(entity_code="BB", name="Tenant B")
    UserFactory(entity=aa, user_code="ADM", roles=["lingadmin"])
    b_admin = UserFactory(entity=bb, user_code="ADM", roles=["lingadmin"])
    b_user = UserFactory(entity=bb, user_code="USR", first_name="Bravoname", roles=["trainer"])
    services.group_create(actor=b_admin, entity=bb, name="bravo-team")
    assert b_user.pk
    base = live_server.url

    page = login(browser, base, "AAADM", "admin")
    assert_no_trace_of_b(page, "index")

    # 1. Create the user.
    page.goto(f"{base}/admin/accounts/user/add/")
    assert_no_trace_of_b(page, "user add form")
    options = page.locator("select[name=entity] option").all_inner_texts()
    assert [o for o in options if o.strip("-")] == ["AA — Tenant A"]
    page.select_option("select[name=entity]", str(aa.pk))
    page.fill("#id_user_code", "NEW")
    page.fill("#id_first_name", "Nina")
    page.fill("#id_password1", "a-long-pass-42")
    page.fill("#id_password2", "a-long-pass-42")
    page.screenshot(path=ARTIFACTS / "admin-03-user-add.png", full_page=True)
    page.click("input[name=_save]")
    page.wait_for_url(f"{base}/admin/accounts/user/")
    assert "AANEW" in page.content()
    new_user = User.objects.get(trainer_id="AANEW")

    # 2. A group holding the trainer role, with the new user as member.
    page.goto(f"{base}/admin/accounts/group/add/")
    assert_no_trace_of_b(page, "group add form")
    page.select_option("select[name=entity]", str(aa.pk))
    page.fill("#id_name", "trainers")
    page.check(f"input[name=roles][value='{Role.objects.get(entity=aa, name='trainer').pk}']")
    page.check(f"input[name=members][value='{new_user.pk}']")
    page.screenshot(path=ARTIFACTS / "admin-04-group-add.png", full_page=True)
    page.click("input[name=_save]")
    page.wait_for_url(f"{base}/admin/accounts/group/")
    page.screenshot(path=ARTIFACTS / "admin-05-groups.png", full_page=True)
    group = Group.objects.get(entity=aa, name="trainers")
    assert list(group.members.all()) == [new_user]
    assert [r.name for r in group.roles.all()] == ["trainer"]

    # 3. Changelist with its filters, the change form's choices: A only.
    page.goto(f"{base}/admin/accounts/user/")
    page.screenshot(path=ARTIFACTS / "admin-06-users.png", full_page=True)
    assert "AANEW" in page.content()
    # The entity filter only offers entities of visible rows (one here: so Django hides it).
    assert "Tenant B" not in page.locator("#changelist-filter").inner_text()
    assert_no_trace_of_b(page, "user changelist")
    page.goto(f"{base}/admin/accounts/user/{new_user.pk}/change/")
    page.screenshot(path=ARTIFACTS / "admin-07-user-change.png", full_page=True)
    assert page.is_checked(f"input[name=groups][value='{group.pk}']")
    assert_no_trace_of_b(page, "user change form")
    page.goto(f"{base}/admin/accounts/role/")
    assert_no_trace_of_b(page, "role changelist")
    page.goto(f"{base}/admin/accounts/auditevent/")
    page.screenshot(path=ARTIFACTS / "admin-08-audit.png", full_page=True)
    assert "user.create" in page.content()
    assert_no_trace_of_b(page, "audit changelist")
    # Another entity's change page: "does not exist", like a missing id.
    page.goto(f"{base}/admin/accounts/user/{b_user.pk}/change/")
    page.screenshot(path=ARTIFACTS / "admin-09-other-entity.png", full_page=True)
    assert page.url == f"{base}/admin/"
    assert_no_trace_of_b(page, "redirect after another entity's user")
    page.close()


@pytest.mark.django_db(transaction=True)
def test_trainer_terminates_a_running_task(live_server, browser, redis_client, tmp_path):
    aa = EntityFactory(entity_code="AA", name="Tenant A")
    UserFactory(entity=aa, user_code="TRN", roles=["trainer"])
    engine = get_engine()
    config_dir = write_pools(tmp_path / "config", [fake_pool("aa_pool")])
    engine.sync_pool_configs(config_dir)
    task_id = engine.launch_chain(
        pool="aa_pool",
        trainer_id="AATRN",
        entity="AA",
        user="AATRN",
        image="nmtwizard/echo",
        tag="v1",
        command=["train"],
    )[0].task_id
    worker = Worker(
        engine.store, "aa_pool", config_dir=config_dir, tick=0.02, refresh_counter=1, check_delay=1
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        until(lambda: engine.get_task(task_id)["status"] == "running", 30, "running")
        base = live_server.url
        page = login(browser, base, "AATRN", "trainer")
        assert "Users" not in page.locator("#content-main").inner_text()
        page.click("text=Tasks")
        page.wait_for_url(f"{base}/admin/console/tasks/")
        page.screenshot(path=ARTIFACTS / "trainer-03-tasks.png", full_page=True)
        assert task_id in page.content() and "running" in page.locator("#tasks").inner_text()
        page.goto(f"{base}/admin/console/pools/")
        page.screenshot(path=ARTIFACTS / "trainer-04-pools.png", full_page=True)
        assert "aa_pool" in page.content()
        page.goto(f"{base}/admin/console/tasks/")
        page.click(f"text={task_id}")
        page.wait_for_url(f"{base}/admin/console/tasks/{task_id}/")
        page.screenshot(path=ARTIFACTS / "trainer-05-task.png", full_page=True)
        confirmations = []
        page.once("dialog", lambda dialog: confirmations.append(dialog.message) or dialog.accept())
        page.click("#terminate")
        page.wait_for_url(f"{base}/admin/console/tasks/{task_id}/")
        page.screenshot(path=ARTIFACTS / "trainer-06-terminated.png", full_page=True)
        assert confirmations == [f"Terminate {task_id}? The job is stopped and cannot be resumed."]
        assert f"terminating {task_id}".lower() in page.content().lower()
        until(lambda: engine.get_task(task_id)["status"] == "stopped", 30, "stopped")
        assert engine.get_task(task_id)["message"] == "aborted"
        page.reload()
        assert "stopped" in page.locator("#task-status").inner_text()
        assert page.locator("#terminate").count() == 0
        page.screenshot(path=ARTIFACTS / "trainer-07-stopped.png", full_page=True)
        page.close()
    finally:
        worker.request_exit(0)
        thread.join(30)
