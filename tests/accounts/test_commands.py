"""Management commands: success and error paths, exit codes, idempotence."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts import policy
from accounts.constants import Perm
from accounts.models import AuditEvent, Entity, ShareRole, User, UserRole

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


def run(*args, stdin: str | None = None, **options) -> str:
    out = io.StringIO()
    if stdin is not None:
        saved, sys.stdin = sys.stdin, io.StringIO(stdin)
    try:
        call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    finally:
        if stdin is not None:
            sys.stdin = saved
    return out.getvalue()


# =============================================================================
# createentity
# =============================================================================
def test_createentity_creates_presets_and_refuses_a_rerun():
    assert "created entity AA (Tenant A) with roles" in run("createentity", "AA", "Tenant A")
    assert set(Entity.objects.get(entity_code="AA").roles.values_list("name", flat=True)) == {
        "user",
        "trainer",
        "lingadmin",
    }
    with pytest.raises(CommandError, match="entity AA exists"):
        run("createentity", "AA", "Again")
    assert "entity AA exists" in run("createentity", "AA", "Again", "--if-missing")


def test_createentity_super_gets_admin_role(settings):
    run("createentity", settings.SNW_SUPER_ENTITY, "Super", "--super", "--description", "root")
    sa = Entity.objects.get(entity_code=settings.SNW_SUPER_ENTITY)
    assert sa.description == "root" and sa.roles.filter(name="admin").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("aa", "x"), "bad entity code 'aa'"),
        (("ABC", "x"), "bad entity code 'ABC'"),
        (("BB", "x", "--super"), "the super entity is SA"),
    ],
)
def test_createentity_errors(args, message):
    with pytest.raises(CommandError, match=message):
        run("createentity", *args)


# =============================================================================
# createuser
# =============================================================================
def test_createuser_with_password_from_stdin_roles_and_group(tenant):
    group = tenant.groups.create(name="ops")
    out = run(
        "createuser",
        "AAJOE",
        "--name",
        "Joe Bloggs",
        "--email",
        "joe@example.com",
        "--role",
        "trainer",
        "--group",
        "ops",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert "created user AAJOE (roles trainer; groups ops)" in out
    joe = User.objects.get(trainer_id="AAJOE")
    assert (joe.first_name, joe.last_name, joe.email) == ("Joe", "Bloggs", "joe@example.com")
    assert joe.check_password(PASSWORD)
    assert policy.can(joe, Perm.TRAIN, "AA") and joe in group.members.all()
    assert AuditEvent.objects.filter(action="user.create", actor=None, object_repr="AAJOE").exists()


def test_createuser_password_from_env(tenant, monkeypatch):
    monkeypatch.setenv("SNW_PASSWORD", PASSWORD)
    run("createuser", "AAENV")
    assert User.objects.get(trainer_id="AAENV").check_password(PASSWORD)


def test_createuser_rerun(tenant, monkeypatch):
    monkeypatch.setenv("SNW_PASSWORD", PASSWORD)
    run("createuser", "AAJOE")
    with pytest.raises(CommandError, match="user AAJOE exists"):
        run("createuser", "AAJOE")
    assert "user AAJOE exists" in run("createuser", "AAJOE", "--if-missing")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("AAJO",), "bad trainer id 'AAJO'"),
        (("AAJ0E",), "bad trainer id"),
        (("ZZJOE",), "unknown entity ZZ"),
        (("aajoe",), "bad entity code 'aa'"),
        (
            ("AAJOE", "--role", "pilot"),
            "unknown role 'pilot' in AA .known: lingadmin, trainer, user",
        ),
        (("AAJOE", "--group", "nope"), "unknown group 'nope' in AA"),
        (("AAJOE", "--password-stdin"), "empty password from stdin"),
        (("AAJOE",), "no password: use --password-stdin, set SNW_PASSWORD"),
    ],
)
def test_createuser_errors(tenant, monkeypatch, args, message):
    monkeypatch.delenv("SNW_PASSWORD", raising=False)
    with pytest.raises(CommandError, match=message):
        run("createuser", *args, stdin="")
    assert not User.objects.filter(trainer_id="AAJOE").exists()


def test_createuser_refuses_a_weak_password(tenant):
    with pytest.raises(CommandError, match="password from stdin refused"):
        run("createuser", "AAJOE", "--password-stdin", stdin="123\n")


def test_createuser_without_password(tenant):
    run("createuser", "AABOT", "--no-password")
    assert not User.objects.get(trainer_id="AABOT").has_usable_password()


# =============================================================================
# grantrole, sharerole, abilities
# =============================================================================
def test_grantrole_user_group_and_permission(tenant, other_tenant, trainer, tenant_admin):
    run("grantrole", "lingadmin", "--user", "AATRN")
    assert policy.can(trainer, Perm.ADMIN_USER, "AA")
    run("grantrole", "lingadmin", "--user", "AATRN", "--revoke")
    assert not policy.can(trainer, Perm.ADMIN_USER, "AA")

    run("grantrole", "-e", "AA", "ops", "--permission", "edit_config", "--create")
    run("grantrole", "-e", "AA", "ops", "--user", "AATRN")
    assert policy.can(trainer, Perm.EDIT_CONFIG, "AA")
    tenant.groups.create(name="team")
    assert "gave role AA/ops to team" in run("grantrole", "-e", "AA", "ops", "--group", "team")
    run("grantrole", "-e", "AA", "ops", "--permission", "edit_config", "--revoke")
    assert not policy.can(trainer, Perm.EDIT_CONFIG, "AA")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("trainer", "--user", "BBNOP"), "unknown user BBNOP in BB"),
        (("ghost", "-e", "AA", "--user", "AATRN"), "unknown role 'ghost' in AA"),
        (("trainer", "-e", "AA", "--permission", "fly"), "unknown permission 'fly'"),
        (("trainer", "-e", "AA", "--permission", "train", "--on", "BB"), "BB shares no role"),
        (("trainer", "-e", "BB", "--user", "AATRN"), "can only be held by users of BB"),
        (("trainer", "-e", "AA", "--group", "x", "--on", "BB"), "--on only goes with"),
    ],
)
def test_grantrole_errors(tenant, other_tenant, trainer, args, message):
    with pytest.raises(CommandError, match=message):
        run("grantrole", *args)


def test_sharerole_and_cross_entity_grant(tenant, other_tenant, trainer):
    assert "shared BB/trainer with AA" in run("sharerole", "trainer", "-e", "BB", "--with", "AA")
    with pytest.raises(CommandError, match="share of BB/trainer with AA exists"):
        run("sharerole", "trainer", "-e", "BB", "--with", "AA")
    run("sharerole", "trainer", "-e", "BB", "--with", "AA", "--if-missing")
    run("grantrole", "-e", "AA", "on-bb", "--permission", "train", "--on", "BB", "--create")
    run("grantrole", "-e", "AA", "on-bb", "--user", "AATRN")
    out = run("abilities", "AATRN")
    assert "BB  train" in out and "AA  train" in out
    run("sharerole", "trainer", "-e", "BB", "--with", "AA", "--revoke")
    assert "BB  train" not in run("abilities", "AATRN")
    assert not ShareRole.objects.exists()
    with pytest.raises(CommandError, match="not shared with AA"):
        run("sharerole", "trainer", "-e", "BB", "--with", "AA", "--revoke")
    with pytest.raises(CommandError, match="cannot share a role with itself"):
        run("sharerole", "trainer", "-e", "BB", "--with", "BB")


def test_abilities_listing(tenant, trainer):
    assert run("abilities", "AATRN", "--json") == (
        '[{"permission": "train", "entity": "AA"}, {"permission": "user", "entity": "AA"}]\n'
    )
    user = User.objects.create_user(entity=tenant, user_code="NOB")
    assert "AANOB has no ability" in run("abilities", user.trainer_id)
    with pytest.raises(CommandError, match="unknown user AAXYZ"):
        run("abilities", "AAXYZ")


# =============================================================================
# bootstrapdemo
# =============================================================================
def test_bootstrapdemo_is_idempotent_and_prints_passwords_once(monkeypatch, settings):
    monkeypatch.setenv("SNW_ADMIN_PASSWORD", PASSWORD)
    monkeypatch.delenv("SNW_DEMO_PASSWORD", raising=False)
    out = run("bootstrapdemo")
    assert "created user SAADM (admin), password: from SNW_ADMIN_PASSWORD" in out
    assert PASSWORD not in out
    generated = out.split("created user DMTRN (trainer), password: ")[1].split()[0]
    admin = User.objects.get(trainer_id="SAADM")
    assert admin.check_password(PASSWORD) and policy.is_admin(admin)
    demo = User.objects.get(trainer_id="DMTRN")
    assert demo.check_password(generated) and policy.can(demo, Perm.TRAIN, "DM")

    # second start: nothing created, nothing printed; a role lost by a bad repair is given back
    UserRole.objects.filter(user=admin).delete()
    out = run("bootstrapdemo")
    assert "password" not in out and "gave role SA/admin back to SAADM" in out
    assert policy.is_admin(admin)
    assert run("bootstrapdemo") == ""


# =============================================================================
# Exit codes through the real manage.py
# =============================================================================
MANAGE = Path(__file__).resolve().parents[2] / "manage.py"


def test_exit_codes_through_manage_py(tmp_path):
    """A child ``manage.py`` on its own SQLite file: exit codes do not depend on the backend."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "snw_site.settings.test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'commands.sqlite3'}",
    }

    def manage(*args, stdin=""):
        return subprocess.run(
            [sys.executable, str(MANAGE), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    migrated = manage("migrate", "-v0")
    assert migrated.returncode == 0, migrated.stderr
    ok = manage("createentity", "QQ", "Exit codes")
    assert ok.returncode == 0, ok.stderr
    again = manage("createentity", "QQ", "Exit codes")
    assert again.returncode == 1 and "entity QQ exists" in again.stderr
    assert manage("createentity", "QQ", "Exit codes", "--if-missing").returncode == 0
    bad = manage("createuser", "QQJ0E", "--password-stdin", stdin=PASSWORD)
    assert bad.returncode == 1 and "bad trainer id" in bad.stderr
    usage = manage("grantrole", "trainer")
    assert usage.returncode == 2  # argparse: one of --user/--group/--permission is required
