"""The ability matrix and the scoped querysets of ``accounts.policy``."""

import pytest

from accounts import policy, services
from accounts.constants import Action, Perm
from accounts.models import Entity, Group, Role, ShareRole, User
from tests.accounts.conftest import role
from tests.factories import EntityFactory, GroupFactory, RoleFactory, UserFactory

pytestmark = pytest.mark.django_db


def _share(owner_role, entity):
    return services.share_role_create(actor=None, role=owner_role, entity=entity)


# =============================================================================
# Ability matrix
# =============================================================================
def test_direct_role(trainer, other_tenant):
    assert policy.abilities(trainer) == {("user", "AA"), ("train", "AA")}
    assert policy.can(trainer, Perm.TRAIN, "AA")
    assert policy.can(trainer, "train", trainer.entity)
    assert not policy.can(trainer, Perm.TRAIN, "BB")
    assert not policy.can(trainer, Perm.ADMIN_USER, "AA")
    assert policy.entity_codes_with(trainer, Perm.TRAIN) == {"AA"}


def test_no_role_no_ability(tenant, other_tenant):
    assert policy.abilities(UserFactory(entity=tenant)) == frozenset()
    assert policy.abilities(None) == frozenset()


def test_group_roles_count_and_stop_when_removed_from_the_group(tenant, other_tenant):
    user = UserFactory(entity=tenant)
    group = services.group_create(actor=None, entity=tenant, name="trainers")
    services.role_assign(actor=None, role=role(tenant, "trainer"), group=group)
    services.group_add_member(actor=None, group=group, user=user)
    assert policy.can(user, Perm.TRAIN, "AA")
    services.role_unassign(actor=None, role=role(tenant, "trainer"), group=group)
    assert not policy.can(user, Perm.TRAIN, "AA")
    services.role_assign(actor=None, role=role(tenant, "trainer"), group=group)
    services.group_remove_member(actor=None, group=group, user=user)
    assert policy.abilities(user) == frozenset()


def test_shared_entity_grant_counts_only_while_shared(tenant, other_tenant, trainer):
    # BB shares its `trainer` role with AA; AA builds a role with train on BB.
    share = _share(role(other_tenant, "trainer"), tenant)
    cross = RoleFactory(entity=tenant, name="train-on-bb")
    services.role_grant(actor=None, role=cross, permission="train", target_entity=other_tenant)
    services.role_assign(actor=None, role=cross, user=trainer)
    assert policy.entity_codes_with(trainer, Perm.TRAIN) == {"AA", "BB"}
    # the share holds user and train, not terminate: nothing else on BB
    assert not policy.can(trainer, Perm.TERMINATE, "BB")

    services.share_role_delete(actor=None, share=share)
    assert policy.entity_codes_with(trainer, Perm.TRAIN) == {"AA"}
    # re-sharing revives the (inert) grant
    _share(role(other_tenant, "trainer"), tenant)
    assert policy.can(trainer, Perm.TRAIN, "BB")


def _unshared_grant(tenant, other_tenant, trainer):
    """Give ``trainer`` train on BB through a role row the service would refuse (written with
    the ORM) to prove the policy ignores it without a matching share."""
    cross = RoleFactory(entity=tenant, name="sneaky")
    cross.grants.create(permission_id=_perm("train"), target_entity=other_tenant)
    services.role_assign(actor=None, role=cross, user=trainer)


def test_grant_on_a_foreign_entity_without_a_share_never_counts(tenant, other_tenant, trainer):
    _unshared_grant(tenant, other_tenant, trainer)
    assert not policy.can(trainer, Perm.TRAIN, "BB")


def test_share_of_a_role_without_the_permission_does_not_open_it(tenant, other_tenant, trainer):
    _share(role(other_tenant, "user"), tenant)
    _unshared_grant(tenant, other_tenant, trainer)
    assert not policy.can(trainer, Perm.TRAIN, "BB")


def test_share_to_a_third_entity_does_not_help(tenant, other_tenant, trainer):
    third = EntityFactory(entity_code="CC")
    _share(role(other_tenant, "trainer"), third)
    _unshared_grant(tenant, other_tenant, trainer)
    assert not policy.can(trainer, Perm.TRAIN, "BB")


def test_admin_is_every_permission_on_every_entity(superadmin, tenant, other_tenant):
    abilities = policy.abilities(superadmin)
    for code in ("SA", "AA", "BB"):
        assert policy.can(superadmin, Perm.TRAIN, code)
        assert policy.can(superadmin, Perm.EDIT_CONFIG, code)
    assert ("admin_entity", "SA") in abilities
    assert ("admin_entity", "AA") not in abilities
    assert policy.is_admin(superadmin) and policy.can_manage_entities(superadmin)
    # a new entity is covered at once
    EntityFactory(entity_code="CC")
    assert policy.can(superadmin, Perm.TRAIN, "CC")


def test_admin_entity_counts_only_on_the_super_entity(sa, tenant):
    boss = UserFactory(entity=sa)
    r = RoleFactory(entity=sa, name="entities")
    services.role_grant(actor=None, role=r, permission="admin_entity")
    services.role_assign(actor=None, role=r, user=boss)
    assert policy.abilities(boss) == {("admin_entity", "SA")}
    assert policy.can_manage_entities(boss)
    # a row on another entity (the service refuses it) counts for nothing
    local = RoleFactory(entity=tenant)
    local.grants.create(permission_id=_perm("admin_entity"), target_entity=tenant)
    user = UserFactory(entity=tenant)
    services.role_assign(actor=None, role=local, user=user)
    assert policy.abilities(user) == frozenset()


def test_inactive_user_or_entity_has_no_ability(trainer, tenant):
    services.user_deactivate(actor=None, user=trainer)
    assert policy.abilities(User.objects.get(pk=trainer.pk)) == frozenset()
    services.user_deactivate(actor=None, user=trainer, is_active=True)
    assert policy.can(trainer, Perm.TRAIN, "AA")
    services.entity_update(actor=None, entity=tenant, is_active=False)
    assert policy.abilities(trainer) == frozenset()


def _perm(code):
    from accounts.models import Permission

    return Permission.objects.get(code=code).pk


# =============================================================================
# Scoped querysets (a second tenant always exists)
# =============================================================================
@pytest.fixture
def world(tenant, other_tenant, tenant_admin, trainer, other_admin, other_user):
    GroupFactory(entity=tenant, name="a-group")
    GroupFactory(entity=other_tenant, name="b-group")
    return tenant, other_tenant


def _codes(qs, field="entity__entity_code"):
    return set(qs.values_list(field, flat=True))


def test_tenant_admin_sees_and_changes_only_their_entity(world, tenant_admin):
    for scope in (policy.users_for, policy.groups_for, policy.roles_for):
        for action in Action:
            assert _codes(scope(tenant_admin, action)) == {"AA"}, (scope, action)
    assert set(policy.entities_for(tenant_admin).values_list("entity_code", flat=True)) == {"AA"}
    assert not policy.entities_for(tenant_admin, Action.CHANGE).exists()


def test_plain_user_sees_themselves_and_what_they_hold(world, trainer):
    assert list(policy.users_for(trainer)) == [trainer]
    assert not policy.users_for(trainer, Action.CHANGE).exists()
    assert set(policy.roles_for(trainer).values_list("name", flat=True)) == {"trainer"}
    assert not policy.roles_for(trainer, Action.CHANGE).exists()
    assert not policy.groups_for(trainer).exists()
    assert not policy.shares_for(trainer).exists()


def test_superadmin_sees_everything(world, superadmin):
    assert _codes(policy.users_for(superadmin, Action.CHANGE)) == {"SA", "AA", "BB"}
    assert policy.entities_for(superadmin, Action.CHANGE).count() == 3


def test_shares_visible_to_both_sides_changeable_by_the_owner(world, tenant_admin, other_admin):
    tenant, other_tenant = world
    share = _share(role(tenant, "trainer"), other_tenant)
    assert list(policy.shares_for(tenant_admin, Action.CHANGE)) == [share]
    assert list(policy.shares_for(other_admin, Action.VIEW)) == [share]
    assert not policy.shares_for(other_admin, Action.CHANGE).exists()
    # the receiving admin sees the shared role (to build roles from it), cannot change it
    assert policy.allows(other_admin, Action.VIEW, share.role)
    assert not policy.allows(other_admin, Action.CHANGE, share.role)


def test_allows_matches_the_querysets(world, tenant_admin, other_user):
    _, other_tenant = world
    assert policy.allows(tenant_admin, Action.CHANGE, Group.objects.get(name="a-group"))
    assert not policy.allows(tenant_admin, Action.VIEW, Group.objects.get(name="b-group"))
    assert not policy.allows(tenant_admin, Action.VIEW, other_user)
    assert policy.allows(tenant_admin, "view", Entity.objects.get(entity_code="AA"))
    assert not policy.allows(tenant_admin, Action.VIEW, other_tenant)
    with pytest.raises(ValueError, match="unknown policy action"):
        policy.allows(tenant_admin, "launch", other_user)
    with pytest.raises(TypeError):
        policy.allows(tenant_admin, Action.VIEW, object())


def test_audit_events_scoped_to_administered_entities(world, tenant_admin):
    services.group_create(actor=tenant_admin, entity=tenant_admin.entity, name="new")
    codes = set(policy.audit_events_for(tenant_admin).values_list("entity_code", flat=True))
    assert codes == {"AA"}


def test_roles_and_shares_are_unique_per_pair(world):
    tenant, other_tenant = world
    _share(role(tenant, "user"), other_tenant)
    assert ShareRole.objects.count() == 1
    assert Role.objects.filter(entity=tenant).count() == 3
