"""THE ability policy of SNW: the only module that decides who may do what, where.

An *ability* is a pair ``(permission_code, entity_code)``. A user's abilities come from the
grants of the roles they hold directly and through their groups:

* a grant on the role's own entity counts as is;
* a grant on another entity A counts only while A shares with the role's entity a role that
  holds that permission on A (deleting the share removes the ability at once);
* ``admin`` means every permission on every entity;
* ``admin_entity`` counts only on the super entity (``settings.SNW_SUPER_ENTITY``) and allows
  managing entities;
* an inactive user, or a user of an inactive entity, has no ability; grants on an inactive
  entity do not count (an ``admin`` still reaches it, to repair it).

Every surface asks this module: ``abilities``/``can``/``entity_codes_with`` for permission
checks, ``<model>s_for(user, action)`` for the rows a user may see (``Action.VIEW``) or change
(``Action.CHANGE``), ``allows(user, action, obj)`` for one object, and ``grant_refusal`` for
"may this actor hand out this grant" (used by ``accounts.services``).
"""

from django.conf import settings
from django.db.models import F, Model, Q, QuerySet

from accounts import cache
from accounts.constants import ADMIN_PERMISSIONS, Action, Perm
from accounts.models import (
    AuditEvent,
    Entity,
    Group,
    GroupRole,
    Permission,
    Role,
    RoleGrant,
    ShareRole,
    User,
    UserRole,
)

__all__ = [
    "Abilities",
    "abilities",
    "administered_entities",
    "allows",
    "assignable_roles",
    "audit_events_for",
    "can",
    "can_manage_entities",
    "compute_abilities",
    "entities_for",
    "entity_administrators",
    "entity_codes_with",
    "grant_refusal",
    "grant_target_entities",
    "grantable_pairs",
    "groups_for",
    "held_abilities",
    "is_admin",
    "may_use_console",
    "model_permission",
    "roles_for",
    "share_allows",
    "shares_for",
    "super_entity_code",
    "users_for",
]

Abilities = frozenset[tuple[str, str]]
_NONE: Abilities = frozenset()


def super_entity_code() -> str:
    return settings.SNW_SUPER_ENTITY


# =============================================================================
# Abilities
# =============================================================================
def compute_abilities(user: User) -> Abilities:
    """Resolve the abilities of ``user`` from SQL (no cache). Four small queries."""
    # Read from the DB, not the instance: a stale in-memory user must not keep its rights.
    if not User.objects.filter(pk=user.pk, is_active=True, entity__is_active=True).exists():
        return _NONE
    return held_abilities(user)


def held_abilities(user: User) -> Abilities:
    """What ``user``'s roles and groups grant, active or not: what they would hold once
    reactivated. The no-escalation rules compare this, so a deactivated administrator cannot
    be taken over by someone holding less (no cache: used only by account changes)."""
    role_ids = set(UserRole.objects.filter(user=user).values_list("role_id", flat=True))
    role_ids |= set(
        GroupRole.objects.filter(group__memberships__user=user).values_list("role_id", flat=True)
    )
    if not role_ids:
        return _NONE
    grants = list(
        RoleGrant.objects.filter(role_id__in=role_ids).values_list(
            "permission__code",
            "target_entity_id",
            "target_entity__entity_code",
            "target_entity__is_active",
            "role__entity_id",
        )
    )
    # (permission, sharing entity A, receiving entity B) allowed by a share of A's role to B.
    foreign = {(t, e) for _, t, _, _, e in grants if t != e}
    shared: set[tuple[str, int, int]] = set()
    if foreign:
        shared = set(
            RoleGrant.objects.filter(
                role__shares__entity_id__in={e for _, e in foreign},
                role__entity_id__in={t for t, _ in foreign},
                target_entity_id=F("role__entity_id"),
            ).values_list("permission__code", "role__entity_id", "role__shares__entity_id")
        )

    result: set[tuple[str, str]] = set()
    for perm, target_id, target_code, target_active, role_entity_id in grants:
        if target_id != role_entity_id and (perm, target_id, role_entity_id) not in shared:
            continue
        if perm == Perm.ADMIN:
            return _admin_abilities()
        if not target_active:
            continue
        if perm == Perm.ADMIN_ENTITY and target_code != super_entity_code():
            continue
        result.add((perm, target_code))
    return frozenset(result)


def _admin_abilities() -> Abilities:
    codes = list(Permission.objects.values_list("code", flat=True))
    sa = super_entity_code()
    return frozenset(
        (perm, entity)
        for entity in Entity.objects.values_list("entity_code", flat=True)
        for perm in codes
        if perm != Perm.ADMIN_ENTITY or entity == sa
    )


def abilities(user) -> Abilities:
    """The set of (permission code, entity code) ``user`` holds; cached (see ``accounts.cache``).

    Anonymous users and ``None`` have none.
    """
    if user is None or not getattr(user, "is_authenticated", False) or user.pk is None:
        return _NONE
    return cache.cached_abilities(user.pk, lambda: compute_abilities(user))


def can(user, permission: str, entity) -> bool:
    """May ``user`` use ``permission`` on ``entity`` (an ``Entity`` or an entity code)?"""
    code = entity.entity_code if isinstance(entity, Entity) else entity
    return (str(permission), code) in abilities(user)


def entity_codes_with(user, permission: str) -> frozenset[str]:
    """The entity codes on which ``user`` holds ``permission`` (e.g. the task API's filter)."""
    return frozenset(code for perm, code in abilities(user) if perm == permission)


def is_admin(user) -> bool:
    """Holds ``admin`` (every permission on every entity)."""
    return can(user, Perm.ADMIN, super_entity_code())


def can_manage_entities(user) -> bool:
    return can(user, Perm.ADMIN_ENTITY, super_entity_code())


def entity_administrators(entity: Entity) -> QuerySet[User]:
    """Active users of ``entity`` who administer it (``admin_user`` on it, or ``admin``), read
    from SQL, bypassing the cache: used by the "never remove the last administrator" rule."""
    admin_roles = Role.objects.filter(entity=entity).filter(
        Q(grants__permission__code=Perm.ADMIN)
        | Q(grants__permission__code=Perm.ADMIN_USER, grants__target_entity=entity)
    )
    return (
        User.objects.filter(entity=entity, is_active=True)
        .filter(
            Q(role_links__role__in=admin_roles)
            | Q(memberships__group__role_links__role__in=admin_roles)
        )
        .distinct()
    )


# =============================================================================
# Handing out grants (the no-escalation rule)
# =============================================================================
def grant_refusal(actor, permission: str, target_code: str, role_entity_code: str) -> str | None:
    """Why ``actor`` may not put grant (``permission`` on ``target_code``) into a role of
    ``role_entity_code`` -- or ``None`` when they may.

    ``actor=None`` is the system. Otherwise the actor must administer the role's entity and
    either hold the grant themselves or, for a grant on another entity, be covered by a share
    of that entity to the role's entity; ``admin`` and ``admin_entity`` only by their holders.
    """
    if actor is None:
        return None
    if not can(actor, Perm.ADMIN_USER, role_entity_code):
        return f"you need admin_user on {role_entity_code} to change its roles"
    if can(actor, permission, target_code):
        return None
    if permission in ADMIN_PERMISSIONS:
        return f"only a holder of {permission} may hand it out"
    if target_code != role_entity_code and share_allows(permission, target_code, role_entity_code):
        return None
    return f"you do not hold {permission} on {target_code}" + (
        ""
        if target_code == role_entity_code
        else f" and {target_code} shares no role holding it with {role_entity_code}"
    )


def grant_target_entities(user) -> QuerySet[Entity]:
    """Entities a grant made by ``user`` may target: those of the user's abilities and those
    sharing a role with an entity they administer. Anything else is "unknown" to them."""
    codes = {code for _, code in abilities(user)}
    return Entity.objects.filter(
        Q(entity_code__in=codes) | Q(shares_given__entity__entity_code__in=_admin_user_codes(user))
    ).distinct()


def share_allows(permission: str, owner_code: str, receiver_code: str) -> bool:
    """Does ``owner_code`` share with ``receiver_code`` a role holding ``permission`` on itself?"""
    return RoleGrant.objects.filter(
        permission__code=permission,
        role__entity__entity_code=owner_code,
        target_entity=F("role__entity"),
        role__shares__entity__entity_code=receiver_code,
    ).exists()


# =============================================================================
# Scoped querysets: what a user may see or change
# =============================================================================
def _admin_user_codes(user) -> frozenset[str]:
    return entity_codes_with(user, Perm.ADMIN_USER)


def _action(action) -> Action:
    try:
        return Action(action)
    except ValueError:
        raise ValueError(f"unknown policy action {action!r}; use one of {list(Action)}") from None


def entities_for(user, action=Action.VIEW) -> QuerySet[Entity]:
    """View: entities where the user holds any ability, and their own. Change: all entities
    for holders of ``admin_entity`` (on the super entity), none otherwise."""
    action = _action(action)
    qs = Entity.objects.all()
    if can_manage_entities(user):
        return qs
    if action is Action.CHANGE or user is None or not user.is_authenticated:
        return qs.none()
    codes = {code for _, code in abilities(user)}
    return qs.filter(Q(entity_code__in=codes) | Q(pk=user.entity_id))


def _scoped(user, action, qs: QuerySet, entity_field: str, also_visible=None) -> QuerySet:
    """Rows of the entities ``user`` administers (``admin_user``; ``admin`` covers all), plus,
    for viewing, ``also_visible(user, administered_codes)``."""
    action = _action(action)
    if user is None or not user.is_authenticated:
        return qs.none()
    codes = _admin_user_codes(user)
    scope = Q(**{f"{entity_field}__entity_code__in": codes})
    if action is Action.VIEW and also_visible is not None:
        scope |= also_visible(user, codes)
    return qs.filter(scope)


def users_for(user, action=Action.VIEW) -> QuerySet[User]:
    """Users of the entities the user administers; viewing also shows oneself."""
    return _scoped(
        user,
        action,
        User.objects.select_related("entity"),
        "entity",
        lambda me, _: Q(pk=me.pk),
    )


def groups_for(user, action=Action.VIEW) -> QuerySet[Group]:
    """Groups of administered entities; viewing also shows the groups one belongs to."""
    return _scoped(
        user,
        action,
        Group.objects.select_related("entity"),
        "entity",
        lambda me, _: Q(pk__in=me.memberships.values("group_id")),
    )


def roles_for(user, action=Action.VIEW) -> QuerySet[Role]:
    """Roles of administered entities. Viewing also shows the roles one holds (directly or by a
    group) and the roles other entities share with an administered entity."""
    return _scoped(
        user,
        action,
        Role.objects.select_related("entity"),
        "entity",
        lambda me, codes: (
            Q(pk__in=me.role_links.values("role_id"))
            | Q(pk__in=GroupRole.objects.filter(group__memberships__user=me).values("role_id"))
            | Q(pk__in=ShareRole.objects.filter(entity__entity_code__in=codes).values("role_id"))
        ),
    )


def shares_for(user, action=Action.VIEW) -> QuerySet[ShareRole]:
    """Shares given by an administered entity (view, change) or received by one (view)."""
    return _scoped(
        user,
        action,
        ShareRole.objects.select_related("role", "owner_entity", "entity"),
        "owner_entity",
        lambda _, codes: Q(entity__entity_code__in=codes),
    )


def audit_events_for(user, action=Action.VIEW) -> QuerySet[AuditEvent]:
    """Audit rows of administered entities (read-only: changing them is never allowed)."""
    action = _action(action)
    qs = AuditEvent.objects.all()
    if action is Action.CHANGE or user is None or not user.is_authenticated:
        return qs.none()
    if is_admin(user):
        return qs
    return qs.filter(entity__entity_code__in=_admin_user_codes(user))


_SCOPES = {
    Entity: entities_for,
    User: users_for,
    Group: groups_for,
    Role: roles_for,
    ShareRole: shares_for,
    AuditEvent: audit_events_for,
}


def allows(user, action, obj: Model) -> bool:
    """May ``user`` do ``action`` on ``obj``? Same answer as the queryset, by construction."""
    try:
        scope = _SCOPES[type(obj)]
    except KeyError:
        raise TypeError(f"no policy for {type(obj).__name__}") from None
    return scope(user, action).filter(pk=obj.pk).exists()


# =============================================================================
# The web console (Django admin): who may enter, and what each model page allows
# =============================================================================
#: Permissions that open the console: administration, or the pools/tasks pages.
CONSOLE_PERMISSIONS = frozenset({Perm.ADMIN, Perm.ADMIN_USER, Perm.USER, Perm.TRAIN})


def administered_entities(user) -> QuerySet[Entity]:
    """Entities in which ``user`` may create users, groups, roles and shares (``admin_user``;
    ``admin`` covers all): the entity choices of creation forms."""
    return Entity.objects.filter(entity_code__in=_admin_user_codes(user))


def may_use_console(user) -> bool:
    """An active user holding ``admin_user`` somewhere, ``admin``, or ``user``/``train`` (the
    pools and tasks pages). Backs ``User.is_staff`` and the console's ``has_permission``."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return any(perm in CONSOLE_PERMISSIONS for perm, _ in abilities(user))


def model_permission(user, model: type[Model], action: str, obj: Model | None = None) -> bool:
    """Console rights on a model, Django-admin style (``action`` is view, add, change or
    delete). With ``obj``: the answer of :func:`allows`. Without: whether the page is open at
    all -- entities for ``admin_entity`` holders, audit rows read-only, the rest for
    administrators of some entity. Backs ``User.has_perm`` and the scoped admin."""
    if model not in _SCOPES:
        return False
    if model is AuditEvent and action != "view":
        return False
    if model is Entity:
        if not can_manage_entities(user) or action == "delete":
            return False
        return obj is None or allows(user, Action.CHANGE, obj)
    if not _admin_user_codes(user):
        return False
    if obj is None:
        return True
    return allows(user, Action.VIEW if action == "view" else Action.CHANGE, obj)


def assignable_roles(user) -> list[Role]:
    """Roles ``user`` may give to a user or group (or share): every grant of the role passes
    :func:`grant_refusal`. The role choices of the console's forms."""
    roles = roles_for(user, Action.CHANGE).prefetch_related(
        "grants__permission", "grants__target_entity"
    )
    return [
        role
        for role in roles
        if all(
            grant_refusal(
                user, g.permission.code, g.target_entity.entity_code, role.entity.entity_code
            )
            is None
            for g in role.grants.all()
        )
    ]


def grantable_pairs(user) -> list[tuple[str, str]]:
    """(permission, target entity code) pairs ``user`` may put into a role of some entity they
    administer: the grant choices of the console's role form."""
    administered = sorted(_admin_user_codes(user))
    if not administered:
        return []
    targets = grant_target_entities(user).values_list("entity_code", flat=True)
    perms = list(Permission.objects.values_list("code", flat=True))
    return sorted(
        (perm, target)
        for target in targets
        for perm in perms
        if (perm != Perm.ADMIN_ENTITY or target == super_entity_code())
        and any(grant_refusal(user, perm, target, code) is None for code in administered)
    )
