"""The write functions: validation, audit rows, and every privilege escalation refused."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts import policy, services
from accounts.constants import Perm
from accounts.models import AuditEvent, Entity, Role, User
from accounts.services import AccountsError, PermissionRefused
from tests.accounts.conftest import role
from tests.factories import GroupFactory, RoleFactory, UserFactory

pytestmark = pytest.mark.django_db


# =============================================================================
# Happy paths and audit
# =============================================================================
def test_admin_creates_entity_with_presets_and_audit(superadmin):
    entity = services.entity_create(actor=superadmin, entity_code="CC", name="C corp")
    assert set(entity.roles.values_list("name", flat=True)) == {"user", "trainer", "lingadmin"}
    event = AuditEvent.objects.filter(action="entity.create", entity_code="CC").get()
    assert (event.actor, event.actor_repr, event.entity_code) == (superadmin, "SAADM", "CC")
    assert event.after["entity_code"] == "CC"


def test_tenant_admin_manages_users_of_their_entity(tenant, other_tenant, tenant_admin):
    group = services.group_create(actor=tenant_admin, entity=tenant, name="ops")
    user = services.user_create(
        actor=tenant_admin,
        entity=tenant,
        user_code="NEW",
        password="pw-123456",
        email="New@EXAMPLE.com",
        roles=[role(tenant, "trainer")],
        groups=[group],
    )
    assert user.trainer_id == "AANEW" and user.check_password("pw-123456")
    assert policy.can(user, Perm.TRAIN, "AA")
    services.user_update(actor=tenant_admin, user=user, first_name="Nina")
    assert User.objects.get(pk=user.pk).first_name == "Nina"
    actions = list(AuditEvent.objects.filter(entity=tenant).values_list("action", flat=True))
    assert {"user.create", "role.assign", "group.add_member", "user.update"} <= set(actions)
    update = AuditEvent.objects.get(action="user.update")
    assert update.before["first_name"] != "Nina" and update.after["first_name"] == "Nina"


def test_user_changes_own_password_and_names(trainer):
    services.user_set_password(actor=trainer, user=trainer, password="q8Vx-mP2z-zz7k")
    services.user_update(actor=trainer, user=trainer, last_name="Self")
    assert User.objects.get(pk=trainer.pk).check_password("q8Vx-mP2z-zz7k")


def test_validation_errors_name_the_field(tenant):
    with pytest.raises(ValidationError) as exc:
        services.user_create(actor=None, entity=tenant, user_code="TOOLONG")
    assert "user_code" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.entity_create(actor=None, entity_code="aa", name="x")
    assert "entity_code" in exc.value.message_dict
    with pytest.raises(AccountsError, match="unknown permission 'fly'") as err:
        services.role_grant(actor=None, role=role(tenant, "user"), permission="fly")
    assert err.value.field == "permission"
    with pytest.raises(AccountsError, match="already grants"):
        services.role_grant(actor=None, role=role(tenant, "user"), permission="user")


def test_cross_entity_membership_and_roles_refused_by_services(tenant, other_tenant):
    stranger = UserFactory(entity=other_tenant)
    with pytest.raises(AccountsError, match="only takes members of AA") as err:
        services.group_add_member(actor=None, group=GroupFactory(entity=tenant), user=stranger)
    assert err.value.field == "user"
    with pytest.raises(AccountsError, match="can only be held by users of AA"):
        services.role_assign(actor=None, role=role(tenant, "trainer"), user=stranger)
    with pytest.raises(AccountsError, match="can only be held by groups of AA"):
        services.role_assign(
            actor=None, role=role(tenant, "trainer"), group=GroupFactory(entity=other_tenant)
        )


def test_share_rules(tenant, other_tenant, tenant_admin):
    share = services.share_role_create(
        actor=tenant_admin, role=role(tenant, "trainer"), entity=other_tenant
    )
    assert share.created_by == tenant_admin and share.owner_entity == tenant
    with pytest.raises(AccountsError, match="already shared"):
        services.share_role_create(actor=None, role=role(tenant, "trainer"), entity=other_tenant)
    with pytest.raises(ValidationError, match="itself"):
        services.share_role_create(actor=None, role=role(tenant, "user"), entity=tenant)
    services.share_role_delete(actor=tenant_admin, share=share)
    assert AuditEvent.objects.filter(action="share_role.delete", entity=tenant).exists()


# =============================================================================
# Escalation attempts (issue 3, item 3), each refused with a clear error
# =============================================================================
def test_tenant_admin_cannot_touch_another_entity(tenant, other_tenant, tenant_admin, other_user):
    attempts = [
        lambda: services.user_create(actor=tenant_admin, entity=other_tenant, user_code="XYZ"),
        lambda: services.user_update(actor=tenant_admin, user=other_user, first_name="x"),
        lambda: services.user_set_password(actor=tenant_admin, user=other_user, password="x"),
        lambda: services.user_deactivate(actor=tenant_admin, user=other_user),
        lambda: services.group_create(actor=tenant_admin, entity=other_tenant, name="g"),
        lambda: services.role_create(actor=tenant_admin, entity=other_tenant, name="r"),
        lambda: services.role_assign(
            actor=tenant_admin, role=role(other_tenant, "lingadmin"), user=other_user
        ),
        lambda: services.role_revoke(
            actor=tenant_admin, role=role(other_tenant, "trainer"), permission="train"
        ),
        lambda: services.share_role_create(
            actor=tenant_admin, role=role(other_tenant, "trainer"), entity=tenant
        ),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionRefused, match="requires admin_user on BB"):
            attempt()


def test_plain_user_cannot_administer(tenant, trainer):
    with pytest.raises(PermissionRefused, match="AATRN cannot create users in AA"):
        services.user_create(actor=trainer, entity=tenant, user_code="XYZ")
    with pytest.raises(PermissionRefused, match="requires admin_user on AA"):
        services.role_assign(actor=trainer, role=role(tenant, "lingadmin"), user=trainer)


def test_entities_are_managed_only_with_admin_entity(tenant, tenant_admin):
    with pytest.raises(PermissionRefused, match="requires admin_entity on SA"):
        services.entity_create(actor=tenant_admin, entity_code="CC", name="C")
    with pytest.raises(PermissionRefused, match="requires admin_entity on SA"):
        services.entity_update(actor=tenant_admin, entity=tenant, name="renamed")


def test_cannot_grant_what_one_does_not_hold(tenant, tenant_admin):
    custom = services.role_create(actor=tenant_admin, entity=tenant, name="custom")
    services.role_grant(actor=tenant_admin, role=custom, permission="train")  # held: fine
    with pytest.raises(PermissionRefused, match="you do not hold edit_config on AA") as err:
        services.role_grant(actor=tenant_admin, role=custom, permission="edit_config")
    assert err.value.field == "role" and err.value.code == "permission_denied"
    with pytest.raises(PermissionRefused, match="edit_config"):
        services.role_create(
            actor=tenant_admin, entity=tenant, name="custom2", permissions=["edit_config"]
        )
    assert not Role.objects.filter(name="custom2").exists()  # atomic: nothing left behind


@pytest.mark.parametrize("permission", ["admin", "admin_entity"])
def test_admin_permissions_only_from_their_holders(sa, tenant, permission):
    sa_lingadmin = UserFactory(entity=sa, user_code="LNG", roles=["lingadmin"])
    with pytest.raises(PermissionRefused, match=f"only a holder of {permission} may hand it out"):
        services.role_create(actor=sa_lingadmin, entity=sa, name="mine", permissions=[permission])


def test_cannot_assign_a_role_holding_more_than_oneself(sa, superadmin):
    sa_lingadmin = UserFactory(entity=sa, user_code="LNG", roles=["lingadmin"])
    with pytest.raises(PermissionRefused, match="cannot give role SA/admin"):
        services.role_assign(actor=sa_lingadmin, role=role(sa, "admin"), user=sa_lingadmin)
    group = services.group_create(actor=superadmin, entity=sa, name="admins")
    services.role_assign(actor=superadmin, role=role(sa, "admin"), group=group)
    with pytest.raises(PermissionRefused, match="cannot give role SA/admin"):
        services.group_add_member(actor=sa_lingadmin, group=group, user=sa_lingadmin)
    with pytest.raises(PermissionRefused, match="cannot give role SA/admin"):
        services.share_role_create(actor=sa_lingadmin, role=role(sa, "admin"), entity=sa_other())
    assert not policy.is_admin(sa_lingadmin)


def sa_other():
    return Entity.objects.exclude(entity_code="SA").first() or services.entity_create(
        actor=None, entity_code="ZZ", name="z"
    )


def test_cannot_take_over_a_more_powerful_user(sa, superadmin):
    sa_lingadmin = UserFactory(entity=sa, user_code="LNG", roles=["lingadmin"])
    for attempt in (
        lambda: services.user_set_password(actor=sa_lingadmin, user=superadmin, password="x"),
        lambda: services.user_update(actor=sa_lingadmin, user=superadmin, email="me@evil.test"),
        lambda: services.user_deactivate(actor=sa_lingadmin, user=superadmin),
    ):
        with pytest.raises(PermissionRefused, match=r"SAADM holds .* which SALNG does not"):
            attempt()


def test_a_deactivated_super_administrator_cannot_be_taken_over(sa, superadmin):
    sa_lingadmin = UserFactory(entity=sa, user_code="LNG", roles=["lingadmin"])
    UserFactory(entity=sa, user_code="ADB", roles=["admin"])  # SA keeps an active administrator
    services.user_deactivate(actor=None, user=superadmin)
    assert policy.abilities(superadmin) == frozenset()  # inactive: holds nothing now

    for attempt in (
        lambda: services.user_set_password(
            actor=sa_lingadmin, user=superadmin, password="takeover-passphrase"
        ),
        lambda: services.user_deactivate(actor=sa_lingadmin, user=superadmin, is_active=True),
    ):
        with pytest.raises(PermissionRefused, match=r"SAADM holds admin on .* SALNG does not"):
            attempt()
    superadmin.refresh_from_db()
    assert not superadmin.is_active and superadmin.check_password("secret-password")


def test_what_one_could_not_give_one_cannot_take_away(sa, superadmin):
    sa_lingadmin = UserFactory(entity=sa, user_code="LNG", roles=["lingadmin"])
    admin_role = role(sa, "admin")
    group = services.group_create(actor=superadmin, entity=sa, name="admins")
    services.role_assign(actor=superadmin, role=admin_role, group=group)
    services.group_add_member(actor=superadmin, group=group, user=sa_lingadmin)
    services.group_remove_member(actor=superadmin, group=group, user=sa_lingadmin)

    for attempt in (
        lambda: services.role_unassign(actor=sa_lingadmin, role=admin_role, user=superadmin),
        lambda: services.user_set_roles(actor=sa_lingadmin, user=superadmin, roles=[]),
        lambda: services.role_revoke(actor=sa_lingadmin, role=admin_role, permission="admin"),
        lambda: services.role_set_grants(actor=sa_lingadmin, role=admin_role, grants=[]),
        lambda: services.role_delete(actor=sa_lingadmin, role=admin_role),
        lambda: services.role_unassign(actor=sa_lingadmin, role=admin_role, group=group),
        lambda: services.group_delete(actor=sa_lingadmin, group=group),
    ):
        with pytest.raises(PermissionRefused, match=r"SA/admin|SAADM holds"):
            attempt()
    assert policy.is_admin(superadmin)
    assert admin_role.grants.filter(permission__code="admin").exists()
    assert group.roles.filter(pk=admin_role.pk).exists()
    # What the actor could give, they may still take away.
    plain = UserFactory(entity=sa, user_code="USR", roles=["user"])
    services.role_unassign(actor=sa_lingadmin, role=role(sa, "user"), user=plain)
    assert not plain.roles.exists()


def test_a_shared_grant_one_could_give_can_be_taken_back(tenant, other_tenant, other_admin):
    services.share_role_create(actor=None, role=role(tenant, "user"), entity=other_tenant)
    reader = services.role_create(
        actor=other_admin, entity=other_tenant, name="read-aa", permissions=[("user", tenant)]
    )
    member = UserFactory(entity=other_tenant, user_code="USR", roles=["trainer"])
    services.role_assign(actor=other_admin, role=reader, user=member)

    services.role_unassign(actor=other_admin, role=reader, user=member)
    services.role_unassign(actor=other_admin, role=role(other_tenant, "trainer"), user=member)

    assert not member.roles.exists()


def test_grants_left_inert_by_a_revoked_share_can_be_cleaned_up(tenant, other_tenant, other_admin):
    share = services.share_role_create(
        actor=None, role=role(tenant, "trainer"), entity=other_tenant
    )
    trains_aa = services.role_create(
        actor=other_admin, entity=other_tenant, name="train-aa", permissions=[("train", tenant)]
    )
    member = UserFactory(entity=other_tenant, user_code="USR")
    group = services.group_create(actor=other_admin, entity=other_tenant, name="g")
    services.role_assign(actor=other_admin, role=trains_aa, user=member)
    services.role_assign(actor=other_admin, role=trains_aa, group=group)
    services.group_add_member(actor=other_admin, group=group, user=member)
    services.share_role_delete(actor=None, share=share)

    services.group_remove_member(actor=other_admin, group=group, user=member)
    services.role_unassign(actor=other_admin, role=trains_aa, user=member)
    services.role_revoke(
        actor=other_admin, role=trains_aa, permission="train", target_entity=tenant
    )
    services.group_delete(actor=other_admin, group=group)
    services.role_delete(actor=other_admin, role=trains_aa)

    assert not Role.objects.filter(pk=trains_aa.pk).exists()


def test_cross_entity_grant_needs_a_share(tenant, other_tenant, tenant_admin, other_admin):
    custom = services.role_create(actor=tenant_admin, entity=tenant, name="on-bb")
    with pytest.raises(PermissionRefused, match="BB shares no role holding it with AA"):
        services.role_grant(
            actor=tenant_admin, role=custom, permission="train", target_entity=other_tenant
        )
    with pytest.raises(AccountsError, match="BB shares no role holding train with AA"):
        services.role_grant(actor=None, role=custom, permission="train", target_entity=other_tenant)
    services.share_role_create(actor=other_admin, role=role(other_tenant, "trainer"), entity=tenant)
    # the share lets AA's admin hand out train on BB, which they do not hold themselves...
    services.role_grant(
        actor=tenant_admin, role=custom, permission="train", target_entity=other_tenant
    )
    # ...but nothing the shared role does not hold
    with pytest.raises(PermissionRefused, match="you do not hold terminate on BB"):
        services.role_grant(
            actor=tenant_admin, role=custom, permission="terminate", target_entity=other_tenant
        )


def test_admin_entity_only_on_the_super_entity(sa, superadmin, tenant):
    with pytest.raises(AccountsError, match="admin_entity only exists on the super entity SA"):
        services.role_grant(
            actor=superadmin,
            role=role(tenant, "user"),
            permission="admin_entity",
            target_entity=tenant,
        )


def test_cannot_move_or_rename_a_user(tenant, other_tenant, tenant_admin, trainer, superadmin):
    for field, value in (("entity", other_tenant), ("user_code", "NEW"), ("trainer_id", "BBTRN")):
        with pytest.raises(PermissionRefused, match="cannot be moved") as err:
            services.user_update(actor=superadmin, user=trainer, **{field: value})
        assert err.value.field == field
    with pytest.raises(AccountsError, match="cannot change is_active here"):
        services.user_update(actor=tenant_admin, user=trainer, is_active=False)
    assert User.objects.get(pk=trainer.pk).trainer_id == "AATRN"


def test_cannot_remove_the_last_administrator(tenant, tenant_admin, superadmin):
    lingadmin = role(tenant, "lingadmin")
    for attempt in (
        lambda: services.user_deactivate(actor=superadmin, user=tenant_admin),
        lambda: services.role_unassign(actor=superadmin, role=lingadmin, user=tenant_admin),
        lambda: services.role_revoke(actor=superadmin, role=lingadmin, permission="admin_user"),
        lambda: services.role_delete(actor=superadmin, role=lingadmin),
    ):
        with pytest.raises(AccountsError, match="would leave AA without an administrator") as err:
            attempt()
        assert err.value.code == "last_administrator"
    assert policy.can(User.objects.get(pk=tenant_admin.pk), Perm.ADMIN_USER, "AA")
    # with a second administrator, the first may go
    second = UserFactory(entity=tenant, user_code="TWO", roles=["lingadmin"])
    services.user_deactivate(actor=second, user=tenant_admin)
    with pytest.raises(AccountsError, match="without an administrator"):
        services.user_deactivate(actor=superadmin, user=second)


def test_last_administrator_through_a_group(tenant, superadmin):
    admin = UserFactory(entity=tenant, user_code="GRP")
    group = services.group_create(actor=None, entity=tenant, name="admins")
    services.role_assign(actor=None, role=role(tenant, "lingadmin"), group=group)
    services.group_add_member(actor=None, group=group, user=admin)
    with pytest.raises(AccountsError, match="without an administrator"):
        services.group_remove_member(actor=superadmin, group=group, user=admin)
    with pytest.raises(AccountsError, match="without an administrator"):
        services.group_delete(actor=superadmin, group=group)


def test_deactivated_actor_can_do_nothing(tenant, tenant_admin, superadmin):
    UserFactory(entity=tenant, user_code="TWO", roles=["lingadmin"])
    services.user_deactivate(actor=superadmin, user=tenant_admin)
    stale = tenant_admin  # the in-memory object still says active
    stale.is_active = True
    with pytest.raises(PermissionRefused):
        services.group_create(actor=stale, entity=tenant, name="late")


def test_super_entity_cannot_be_deactivated(sa, superadmin):
    with pytest.raises(AccountsError, match="super entity cannot be deactivated"):
        services.entity_update(actor=superadmin, entity=sa, is_active=False)


def test_role_factory_role_is_empty(tenant):
    assert not RoleFactory(entity=tenant).grants.exists()


def test_user_codes_are_unique_in_an_entity_whatever_their_case(tenant, tenant_admin):
    services.user_create(actor=tenant_admin, entity=tenant, user_code="JOE")

    with pytest.raises(AccountsError, match="user AAJOE already exists"):
        services.user_create(actor=tenant_admin, entity=tenant, user_code="joe")
    with pytest.raises(IntegrityError), transaction.atomic():  # and in the database
        User(entity=tenant, user_code="Joe").save()
    codes = User.objects.filter(user_code__iexact="joe").values_list("trainer_id", flat=True)
    assert list(codes) == ["AAJOE"]


def test_preset_roles_keep_their_names(tenant, tenant_admin):
    trainer_role = role(tenant, "trainer")

    with pytest.raises(AccountsError, match="the preset role trainer keeps its name"):
        services.role_update(actor=tenant_admin, role=trainer_role, name="learners")
    services.role_update(actor=tenant_admin, role=trainer_role, description="Trains models")

    trainer_role.refresh_from_db()
    assert (trainer_role.name, trainer_role.description) == ("trainer", "Trains models")
