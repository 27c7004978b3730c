"""Constraints of the identity models, enforced by the database (and by validation)."""

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import DataError, IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from accounts.constants import PERMISSION_DESCRIPTIONS
from accounts.models import (
    Entity,
    Group,
    GroupMembership,
    GroupRole,
    Permission,
    Role,
    ShareRole,
    User,
    UserRole,
)
from tests.accounts.conftest import role
from tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db


def _refused(make, error=ValidationError, match="own entity"):
    with pytest.raises(error, match=match), transaction.atomic():
        make()


def _db_refuses(make):
    # too long for the column: PostgreSQL says DataError, SQLite relies on the check constraint
    with pytest.raises((IntegrityError, DataError)), transaction.atomic():
        make()


def test_the_twelve_permissions_are_seeded_with_descriptions():
    assert dict(Permission.objects.values_list("code", "description")) == {
        str(k): v for k, v in PERMISSION_DESCRIPTIONS.items()
    }
    assert Permission.objects.count() == 12


@pytest.mark.parametrize("code", ["A", "ABC", "ab", "A1", "", "é1"])
def test_entity_code_must_be_two_upper_case_letters(code):
    with pytest.raises(ValidationError) as exc:
        Entity(entity_code=code, name="x").full_clean()
    assert "entity_code" in exc.value.message_dict
    _db_refuses(lambda: Entity.objects.create(entity_code=code, name="x"))


def test_entity_code_is_unique(tenant):
    _db_refuses(lambda: Entity.objects.create(entity_code="AA", name="again"))


@pytest.mark.parametrize("code", ["AB", "ABCD", "A1C", "ab_"])
def test_user_code_must_be_three_letters(tenant, code):
    with pytest.raises(ValidationError) as exc:
        User.objects.create_user(entity=tenant, user_code=code, password="x")
    assert "user_code" in exc.value.message_dict
    _db_refuses(lambda: User.objects.create(entity=tenant, user_code=code))


def test_trainer_id_is_entity_code_plus_user_code_and_unique(tenant, other_tenant):
    user = User.objects.create_user(entity=tenant, user_code="Jas", password="pw")
    assert user.trainer_id == "AAJas"
    assert user.check_password("pw")
    # the same user code is fine in another entity
    assert User.objects.create_user(entity=other_tenant, user_code="Jas").trainer_id == "BBJas"
    with pytest.raises(ValidationError) as exc:
        User.objects.create_user(entity=tenant, user_code="Jas")
    assert "trainer_id" in exc.value.message_dict
    _db_refuses(lambda: User.objects.create(entity=tenant, user_code="Jas"))


def test_trainer_id_cannot_disagree_with_user_code_in_the_database(tenant):
    user = UserFactory(entity=tenant, user_code="ABC")
    _db_refuses(lambda: User.objects.filter(pk=user.pk).update(trainer_id="AAXYZ"))


def test_user_without_password_cannot_log_in(tenant):
    user = User.objects.create_user(entity=tenant, user_code="NOP")
    assert not user.has_usable_password()


def test_group_and_role_names_are_unique_within_an_entity(tenant, other_tenant):
    Group.objects.create(entity=tenant, name="ops")
    Group.objects.create(entity=other_tenant, name="ops")
    _db_refuses(lambda: Group.objects.create(entity=tenant, name="ops"))
    Role.objects.create(entity=other_tenant, name="custom")
    Role.objects.create(entity=tenant, name="custom")
    _db_refuses(lambda: Role.objects.create(entity=tenant, name="custom"))


def test_cross_entity_group_members_are_rejected(tenant, other_tenant):
    group = GroupFactory(entity=tenant)
    stranger = UserFactory(entity=other_tenant)
    _refused(lambda: GroupMembership.objects.create(group=group, user=stranger))
    _refused(lambda: group.members.add(stranger))
    _refused(lambda: stranger.groups.add(group))
    assert not GroupMembership.objects.exists()


def test_cross_entity_role_holders_are_rejected(tenant, other_tenant):
    stranger = UserFactory(entity=other_tenant)
    foreign_group = GroupFactory(entity=other_tenant)
    trainer_role = role(tenant, "trainer")
    _refused(lambda: UserRole.objects.create(role=trainer_role, user=stranger))
    _refused(lambda: trainer_role.users.add(stranger))
    _refused(lambda: stranger.roles.add(trainer_role))
    _refused(lambda: GroupRole.objects.create(role=trainer_role, group=foreign_group))
    _refused(lambda: foreign_group.roles.add(trainer_role))
    assert not UserRole.objects.filter(user=stranger).exists()


def test_share_role_pair_is_unique_and_never_with_itself(tenant, other_tenant):
    trainer_role = role(tenant, "trainer")
    ShareRole.objects.create(role=trainer_role, owner_entity=tenant, entity=other_tenant)
    _db_refuses(
        lambda: ShareRole.objects.create(
            role=trainer_role, owner_entity=tenant, entity=other_tenant
        )
    )
    _db_refuses(
        lambda: ShareRole.objects.create(
            role=role(tenant, "user"), owner_entity=tenant, entity=tenant
        )
    )


def test_every_entity_gets_its_preset_roles(sa, tenant):
    def grants(entity):
        return {
            r.name: sorted(r.grants.values_list("permission__code", flat=True))
            for r in Role.objects.filter(entity=entity)
        }

    assert grants(tenant) == {
        "user": ["user"],
        "trainer": ["train", "user"],
        "lingadmin": sorted(
            [
                "user",
                "train",
                "delete_model",
                "terminate",
                "admin_user",
                "release_model",
                "push_model",
            ]
        ),
    }
    assert grants(sa)["admin"] == ["admin"]
    assert set(grants(sa)) == {"user", "trainer", "lingadmin", "admin"}
    # grants default to the role's own entity
    assert set(
        Role.objects.get(entity=tenant, name="trainer").grants.values_list(
            "target_entity__entity_code", flat=True
        )
    ) == {"AA"}


@pytest.mark.django_db(transaction=True)
def test_the_case_insensitive_user_code_migration_names_the_clashes():
    """Upgrading over users ABJOE and ABjoe stops with their names, and changes nothing."""
    call_command("migrate", "accounts", "0004", verbosity=0)
    try:
        apps = (
            MigrationExecutor(connection)
            .loader.project_state(("accounts", "0004_user_token_epoch"))
            .apps
        )
        entity = apps.get_model("accounts", "Entity").objects.create(entity_code="AB", name="AB")
        old_user = apps.get_model("accounts", "User")
        for code in ("JOE", "joe"):
            old_user.objects.create(entity=entity, user_code=code, trainer_id=f"AB{code}")

        with pytest.raises(RuntimeError, match="these clash: ABJOE, ABjoe"):
            call_command("migrate", "accounts", "0005", verbosity=0)

        old_user.objects.filter(trainer_id="ABjoe").delete()
    finally:
        call_command("migrate", verbosity=0)
    assert User.objects.filter(trainer_id="ABJOE").exists()
