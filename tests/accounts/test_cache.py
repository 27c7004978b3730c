"""The ability cache: served from Redis in one round trip, never stale after any change.

These tests commit (``transaction=True``): the cache only stores abilities computed from
committed rows, which is precisely what is being specified.
"""

import json

import pytest
from django.conf import settings
from django.core.cache import caches
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts import cache, policy, services
from accounts.constants import Perm
from accounts.models import Entity, Group, GroupMembership, Permission, Role, ShareRole, User
from tests.accounts.conftest import role
from tests.factories import EntityFactory, RoleFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def setup():
    """AA with a trainer in a group; BB shares its trainer role with AA; the trainer holds a
    role of AA with train on BB."""
    aa = EntityFactory(entity_code="AA")
    bb = EntityFactory(entity_code="BB")
    user = UserFactory(entity=aa, user_code="TRN")
    group = services.group_create(actor=None, entity=aa, name="trainers")
    services.role_assign(actor=None, role=role(aa, "trainer"), group=group)
    services.group_add_member(actor=None, group=group, user=user)
    share = services.share_role_create(actor=None, role=role(bb, "trainer"), entity=aa)
    cross = services.role_create(actor=None, entity=aa, name="on-bb", permissions=[("train", bb)])
    services.role_assign(actor=None, role=cross, user=user)
    return {"aa": aa, "bb": bb, "user": user, "group": group, "share": share, "cross": cross}


def _warm(user):
    first = policy.abilities(user)
    with CaptureQueriesContext(connection) as queries:
        assert policy.abilities(user) == first
    assert len(queries) == 0, "second read must come from Redis"
    return first


@pytest.fixture
def redis_commands(monkeypatch):
    """The commands the ability cache sends (observed on its own client, not server-wide:
    other suites share the Redis server)."""
    from django.core.cache import caches

    client = caches["default"].client.get_client()
    sent: list[str] = []
    original = client.execute_command

    def observe(*args, **options):
        sent.append(str(args[0]).upper())
        return original(*args, **options)

    monkeypatch.setattr(client, "execute_command", observe)
    return sent


def test_cached_read_is_one_redis_round_trip_and_no_sql(setup, redis_commands):
    user = setup["user"]
    _warm(user)
    redis_commands.clear()
    with CaptureQueriesContext(connection) as queries:
        policy.abilities(user)
    assert redis_commands == ["MGET"]
    assert len(queries) == 0


def test_request_scope_memoises(setup, redis_commands):
    user = setup["user"]
    _warm(user)
    with cache.request_scope():
        redis_commands.clear()
        for _ in range(5):
            policy.can(user, Perm.TRAIN, "AA")
        assert redis_commands == ["MGET"]
        # a change inside the request clears the memo
        services.role_unassign(actor=None, role=setup["cross"], user=user)
        assert not policy.can(user, Perm.TRAIN, "BB")


CHANGES = {
    "share deleted": lambda s: services.share_role_delete(actor=None, share=s["share"]),
    "share deleted (ORM)": lambda s: ShareRole.objects.all().delete(),
    "grant revoked": lambda s: services.role_revoke(
        actor=None, role=s["cross"], permission="train", target_entity=s["bb"]
    ),
    "grant deleted (ORM)": lambda s: s["cross"].grants.all().delete(),
    "role unassigned": lambda s: services.role_unassign(
        actor=None, role=s["cross"], user=s["user"]
    ),
    "role removed (m2m)": lambda s: s["user"].roles.remove(s["cross"]),
    "role cleared (m2m)": lambda s: s["user"].roles.clear(),
    "role deleted": lambda s: Role.objects.filter(pk=s["cross"].pk).delete(),
    "user deactivated": lambda s: services.user_deactivate(actor=None, user=s["user"]),
    "user deactivated (save)": lambda s: _set(
        User.objects.get(pk=s["user"].pk), is_active=False
    ).save(),
    "entity deactivated": lambda s: services.entity_update(
        actor=None, entity=s["aa"], is_active=False
    ),
    "BB deactivated (ORM save)": lambda s: _set(
        Entity.objects.get(entity_code="BB"), is_active=False
    ).save(),
}
GROUP_CHANGES = {
    "member removed": lambda s: services.group_remove_member(
        actor=None, group=s["group"], user=s["user"]
    ),
    "member removed (m2m)": lambda s: s["group"].members.remove(s["user"]),
    "membership deleted (ORM)": lambda s: GroupMembership.objects.all().delete(),
    "group role removed": lambda s: services.role_unassign(
        actor=None, role=role(s["aa"], "trainer"), group=s["group"]
    ),
    "group role removed (m2m)": lambda s: s["group"].roles.clear(),
    "group deleted": lambda s: Group.objects.all().delete(),
}


def _set(obj, **values):
    for k, v in values.items():
        setattr(obj, k, v)
    return obj


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_no_stale_ability_after_a_change(setup, change):
    user = setup["user"]
    assert ("train", "BB") in _warm(user)
    CHANGES[change](setup)
    assert ("train", "BB") not in policy.abilities(user)


@pytest.mark.parametrize("change", sorted(GROUP_CHANGES))
def test_no_stale_ability_after_a_group_change(setup, change):
    user = setup["user"]
    aa = setup["aa"]
    # keep only the group's trainer role as the source of train on AA
    user.roles.clear()
    assert ("train", "AA") in _warm(user)
    GROUP_CHANGES[change](setup)
    assert ("train", "AA") not in policy.abilities(user), aa


def test_additions_show_at_once(setup):
    user = setup["user"]
    _warm(user)
    services.role_assign(actor=None, role=role(setup["aa"], "lingadmin"), user=user)
    assert policy.can(user, Perm.ADMIN_USER, "AA")
    extra = RoleFactory(entity=setup["aa"])
    extra.grants.create(
        permission=Permission.objects.get(code="edit_config"), target_entity=setup["aa"]
    )
    extra.users.add(user)
    assert policy.can(user, Perm.EDIT_CONFIG, "AA")


def test_login_does_not_flush_the_cache(setup, redis_client):
    user = setup["user"]
    _warm(user)
    generation = redis_client.keys("*abilities:generation*")
    user.last_login = user.date_joined
    user.save(update_fields=["last_login"])
    with CaptureQueriesContext(connection) as queries:
        policy.abilities(user)
    assert len(queries) == 0
    assert redis_client.keys("*abilities:generation*") == generation


def test_rolled_back_change_leaves_no_entry(setup):
    user = setup["user"]
    _warm(user)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.role_assign(actor=None, role=role(setup["aa"], "lingadmin"), user=user)
        assert policy.can(user, Perm.ADMIN_USER, "AA")  # seen inside the transaction...
        raise RuntimeError
    assert not policy.can(user, Perm.ADMIN_USER, "AA")  # ...and gone after the rollback


def test_redis_down_falls_back_to_sql(setup, settings, caplog):
    user = setup["user"]
    expected = policy.compute_abilities(user)
    # pytest-django's settings fixture resets the cache handler on CACHES changes
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    assert policy.abilities(user) == expected
    assert "computing abilities from the database" in caplog.text


def test_super_entity_setting_is_used(setup):
    assert policy.super_entity_code() == settings.SNW_SUPER_ENTITY


def test_cached_entry_is_plain_json(setup, redis_client):
    """What the cache stores is JSON: a value written to Redis is never unpickled."""
    user = setup["user"]
    _warm(user)
    key = caches["default"].client.make_key(cache.ABILITY_USER_KEY.format(user_id=user.pk))
    generation, abilities = json.loads(redis_client.get(key))
    assert generation == json.loads(
        redis_client.get(caches["default"].client.make_key(cache.ABILITY_GENERATION_KEY))
    )
    assert ["train", "BB"] in abilities
