"""Write functions of the accounts app (HackSoft style): ``<entity>_<action>``.

Every function takes keyword-only arguments including ``actor`` (the acting user, ``None`` for
the system: migrations, bootstrap and operator commands), runs in one transaction, validates
with ``full_clean()``, refuses privilege escalation through ``accounts.policy``, and writes one
``AuditEvent`` per change. Every surface (API, admin, commands) calls these; none writes rows
itself.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts import policy
from accounts.constants import PRESET_ROLES, SUPER_ENTITY_PRESET_ROLES, Perm
from accounts.models import (
    AuditEvent,
    Entity,
    Group,
    GroupMembership,
    GroupRole,
    Permission,
    Role,
    RoleGrant,
    ShareRole,
    User,
    UserRole,
)
from accounts.tokens import persistent_tokens_revoke_for_user, tokens_revoke_for_users

__all__ = [
    "AccountsError",
    "PermissionRefused",
    "audit_record",
    "entity_create",
    "entity_update",
    "group_add_member",
    "group_create",
    "group_delete",
    "group_remove_member",
    "group_set_members",
    "group_set_roles",
    "group_update",
    "require_covers",
    "role_assign",
    "role_create",
    "role_delete",
    "role_grant",
    "role_revoke",
    "role_set_grants",
    "role_unassign",
    "role_update",
    "share_role_create",
    "share_role_delete",
    "user_create",
    "user_deactivate",
    "user_set_groups",
    "user_set_password",
    "user_set_roles",
    "user_update",
]


# =============================================================================
# Errors
# =============================================================================
class AccountsError(Exception):
    """A refused account change. ``code`` is stable (for the API), ``field`` names the input at
    fault when there is one, and the message says why in plain words."""

    default_code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code or self.default_code

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class PermissionRefused(AccountsError):
    """The actor lacks the right for this change (the API answers 403)."""

    default_code = "permission_denied"


# =============================================================================
# Helpers
# =============================================================================
def _require(actor: User | None, permission: str, entity: Entity | str, doing: str) -> None:
    """Refuse unless ``actor`` is the system or holds ``permission`` on ``entity``."""
    if actor is None:
        return
    code = entity.entity_code if isinstance(entity, Entity) else entity
    if not actor.is_active:
        raise PermissionRefused(f"{actor} is deactivated and cannot {doing}")
    if not policy.can(actor, permission, code):
        raise PermissionRefused(f"{actor} cannot {doing}: it requires {permission} on {code}")


def require_covers(actor: User | None, user: User, doing: str) -> None:
    """Refuse to act on a user holding an ability the actor could not give them (an entity
    administrator must not reset the password of, or lock out, a super administrator of the
    same entity), counting what a deactivated user would hold again once reactivated."""
    if actor is None or actor.pk == user.pk:
        return
    for perm, code in sorted(policy.held_abilities(user) - policy.abilities(actor)):
        if policy.grant_refusal(actor, perm, code, user.entity.entity_code) is not None:
            raise PermissionRefused(
                f"{actor} cannot {doing}: {user} holds {perm} on {code}, which {actor} does not",
                field="user",
            )


def _require_grantable(actor: User | None, role: Role, grants: Iterable[RoleGrant]) -> None:
    """Refuse unless ``actor`` could hand out each grant (the no-escalation rule)."""
    for grant in grants:
        reason = policy.grant_refusal(
            actor, grant.permission.code, grant.target_entity.entity_code, role.entity.entity_code
        )
        if reason:
            raise PermissionRefused(
                f"cannot give role {role} ({grant.permission.code} on "
                f"{grant.target_entity.entity_code}): {reason}",
                field="role",
            )


def _require_removable(actor: User | None, role: Role, grants: Iterable[RoleGrant]) -> None:
    """What the actor could not give, they cannot take away -- except grants on another entity
    whose share was revoked: they count for nothing, and the role's administrators may always
    clean them up."""
    live = [
        grant
        for grant in grants
        if grant.target_entity_id == role.entity_id
        or policy.share_allows(
            grant.permission.code, grant.target_entity.entity_code, role.entity.entity_code
        )
    ]
    _require_grantable(actor, role, live)


def _role_grants(role: Role) -> list[RoleGrant]:
    return list(role.grants.select_related("permission", "target_entity"))


def _group_grants(group: Group) -> list[tuple[Role, RoleGrant]]:
    return [(role, grant) for role in group.roles.all() for grant in _role_grants(role)]


def audit_record(
    *,
    actor: User | None,
    entity: Entity | str | None,
    action: str,
    object_type: str,
    object_id: str,
    object_repr: str,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEvent:
    """Write one audit row. ``entity`` (an instance or a code) is whose administrators see it.

    For changes made outside this module too (tokens, tasks); the caller chose what ``before``
    and ``after`` hold, and never puts a secret there.
    """
    if isinstance(entity, str):
        code, entity = entity, Entity.objects.filter(entity_code=entity).first()
    else:
        code = entity.entity_code if entity is not None else ""
    return AuditEvent.objects.create(
        actor=actor,
        actor_repr=actor.trainer_id if actor is not None else "system",
        entity=entity,
        entity_code=code,
        action=action,
        object_type=object_type,
        object_id=object_id[:64],
        object_repr=object_repr[:200],
        before=before,
        after=after,
    )


def _audit(
    *,
    actor: User | None,
    entity: Entity | None,
    action: str,
    obj: Any,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEvent:
    return audit_record(
        actor=actor,
        entity=entity,
        action=action,
        object_type=type(obj).__name__,
        object_id=str(obj.pk or ""),
        object_repr=str(obj),
        before=before,
        after=after,
    )


def _check_password(password: str | None, user: User) -> None:
    """``AUTH_PASSWORD_VALIDATORS``, here so that every surface applies them."""
    if password is None:
        return
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise AccountsError(" ".join(exc.messages), field="password") from None


def _snapshot(obj, fields: Iterable[str]) -> dict:
    return {name: getattr(obj, name) for name in fields}


def _save(obj, *, exclude: Iterable[str] = ()):
    """``full_clean()`` then save; a race past validation still ends as a clear error."""
    obj.full_clean(exclude=list(exclude) or None)
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError as exc:
        raise AccountsError(f"{type(obj).__name__} conflicts with an existing one: {exc}") from exc
    return obj


@contextmanager
def _keeps_an_administrator(entity: Entity, doing: str) -> Iterator[None]:
    """Refuse a change that would leave ``entity`` (which had one) without an administrator."""
    had = policy.entity_administrators(entity).exists()
    yield
    if had and not policy.entity_administrators(entity).exists():
        raise AccountsError(
            f"cannot {doing}: it would leave {entity.entity_code} without an administrator "
            "(a user holding admin_user on it)",
            code="last_administrator",
        )


def _permission(code: str | Permission) -> Permission:
    if isinstance(code, Permission):
        return code
    try:
        return Permission.objects.get(code=code)
    except Permission.DoesNotExist:
        known = ", ".join(Permission.objects.values_list("code", flat=True))
        raise AccountsError(
            f"unknown permission {code!r}; known: {known}", field="permission"
        ) from None


# =============================================================================
# Entities
# =============================================================================
ENTITY_FIELDS = ("entity_code", "name", "description", "is_active")


@transaction.atomic
def entity_create(
    *, actor: User | None, entity_code: str, name: str, description: str = ""
) -> Entity:
    """Create an entity and its preset roles (``user``, ``trainer``, ``lingadmin``; the super
    entity also ``admin``). Requires ``admin_entity``."""
    if actor is not None:
        _require(
            actor,
            Perm.ADMIN_ENTITY,
            policy.super_entity_code(),
            "create entities",
        )
    entity = _save(Entity(entity_code=entity_code, name=name, description=description))
    _audit(
        actor=actor,
        entity=entity,
        action="entity.create",
        obj=entity,
        after=_snapshot(entity, ENTITY_FIELDS),
    )
    for role_name, (role_description, permissions) in _presets(entity).items():
        # The system builds presets: no actor check on the grants (an entity admin gets
        # lingadmin's permissions on their own entity by design).
        role_create(
            actor=None,
            entity=entity,
            name=role_name,
            description=role_description,
            permissions=permissions,
        )
    return entity


@transaction.atomic
def entity_update(
    *,
    actor: User | None,
    entity: Entity,
    name: str | None = None,
    description: str | None = None,
    is_active: bool | None = None,
) -> Entity:
    """Rename, describe, (de)activate an entity; the code never changes. Needs ``admin_entity``;
    the super entity cannot be deactivated."""
    _require(actor, Perm.ADMIN_ENTITY, policy.super_entity_code(), "change entities")
    entity = Entity.objects.select_for_update().get(pk=entity.pk)
    before = _snapshot(entity, ENTITY_FIELDS)
    if is_active is False and entity.entity_code == settings.SNW_SUPER_ENTITY:
        raise AccountsError("the super entity cannot be deactivated", field="is_active")
    deactivating = is_active is False and entity.is_active
    for field, value in (("name", name), ("description", description), ("is_active", is_active)):
        if value is not None:
            setattr(entity, field, value)
    _save(entity)
    if deactivating:  # its users' tokens stay dead if the entity comes back
        tokens_revoke_for_users(User.objects.filter(entity=entity))
    _audit(
        actor=actor,
        entity=entity,
        action="entity.update",
        obj=entity,
        before=before,
        after=_snapshot(entity, ENTITY_FIELDS),
    )
    return entity


# =============================================================================
# Users
# =============================================================================
USER_FIELDS = ("trainer_id", "first_name", "last_name", "email", "is_active")
USER_EDITABLE = ("first_name", "last_name", "email")


@transaction.atomic
def user_create(
    *,
    actor: User | None,
    entity: Entity,
    user_code: str,
    password: str | None = None,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    roles: Iterable[Role] = (),
    groups: Iterable[Group] = (),
) -> User:
    """Create a user of ``entity`` (``admin_user`` on it), optionally with roles and groups.
    ``password=None`` leaves an unusable password."""
    _require(actor, Perm.ADMIN_USER, entity, f"create users in {entity.entity_code}")
    if not entity.is_active:
        raise AccountsError(f"entity {entity.entity_code} is deactivated", field="entity")
    taken = User.objects.filter(entity=entity, user_code__iexact=user_code).first()
    if taken is not None:
        raise AccountsError(f"user {taken} already exists", field="user_code", code="exists")
    user = User(
        entity=entity,
        user_code=user_code,
        trainer_id=f"{entity.entity_code}{user_code}",  # the password rules compare with it
        first_name=first_name,
        last_name=last_name,
        email=User.objects.normalize_email(email),
    )
    _check_password(password, user)
    user.set_password(password)
    _save(user)
    _audit(
        actor=actor,
        entity=entity,
        action="user.create",
        obj=user,
        after=_snapshot(user, USER_FIELDS),
    )
    for role in roles:
        role_assign(actor=actor, role=role, user=user)
    for group in groups:
        group_add_member(actor=actor, group=group, user=user)
    return user


@transaction.atomic
def user_update(*, actor: User | None, user: User, **changes: Any) -> User:
    """Change a user's names or email. The entity and user code (hence the trainer id, the
    prefix of their tasks) never change: a user cannot be moved to another entity."""
    forbidden = set(changes) - set(USER_EDITABLE)
    if forbidden & {"entity", "entity_id", "user_code", "trainer_id"}:
        raise PermissionRefused(
            "a user cannot be moved to another entity or renamed (the trainer id is the prefix "
            "of their tasks); create a new user instead",
            field=sorted(forbidden)[0],
        )
    if forbidden:
        raise AccountsError(
            f"cannot change {', '.join(sorted(forbidden))} here", field=sorted(forbidden)[0]
        )
    if actor is None or actor.pk != user.pk:
        _require(actor, Perm.ADMIN_USER, user.entity, f"change users of {user.entity.entity_code}")
        require_covers(actor, user, f"change {user}")
    user = User.objects.select_for_update().get(pk=user.pk)
    before = _snapshot(user, USER_FIELDS)
    for field, value in changes.items():
        setattr(user, field, User.objects.normalize_email(value) if field == "email" else value)
    _save(user, exclude=["password"])
    _audit(
        actor=actor,
        entity=user.entity,
        action="user.update",
        obj=user,
        before=before,
        after=_snapshot(user, USER_FIELDS),
    )
    return user


@transaction.atomic
def user_set_password(*, actor: User | None, user: User, password: str | None) -> User:
    """Set (or, with ``None``, disable) a password: oneself, or ``admin_user`` on the entity."""
    if actor is None or actor.pk != user.pk:
        _require(actor, Perm.ADMIN_USER, user.entity, f"change passwords in {user.entity_code}")
        require_covers(actor, user, f"change the password of {user}")
    _check_password(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    if password is None:  # Django calls no password_changed hook for an unusable password
        persistent_tokens_revoke_for_user(user)
    _audit(actor=actor, entity=user.entity, action="user.set_password", obj=user)
    return user


@transaction.atomic
def user_deactivate(*, actor: User | None, user: User, is_active: bool = False) -> User:
    """Deactivate (or reactivate with ``is_active=True``) a user. Never the last administrator
    of an entity."""
    _require(actor, Perm.ADMIN_USER, user.entity, f"deactivate users of {user.entity_code}")
    require_covers(actor, user, f"deactivate {user}")
    user = User.objects.select_for_update().get(pk=user.pk)
    before = _snapshot(user, USER_FIELDS)
    with _keeps_an_administrator(user.entity, f"deactivate {user}"):
        user.is_active = is_active
        user.save(update_fields=["is_active"])
    if not is_active:  # tokens stay dead if the user comes back
        tokens_revoke_for_users(User.objects.filter(pk=user.pk))
    _audit(
        actor=actor,
        entity=user.entity,
        action="user.activate" if is_active else "user.deactivate",
        obj=user,
        before=before,
        after=_snapshot(user, USER_FIELDS),
    )
    return user


# =============================================================================
# Groups
# =============================================================================
@transaction.atomic
def group_create(*, actor: User | None, entity: Entity, name: str, description: str = "") -> Group:
    _require(actor, Perm.ADMIN_USER, entity, f"create groups in {entity.entity_code}")
    group = _save(Group(entity=entity, name=name, description=description))
    _audit(
        actor=actor,
        entity=entity,
        action="group.create",
        obj=group,
        after={"name": name, "description": description},
    )
    return group


@transaction.atomic
def group_update(
    *, actor: User | None, group: Group, name: str | None = None, description: str | None = None
) -> Group:
    """Rename or describe a group (``admin_user`` on its entity). Added for the console and
    the accounts API (issue 8)."""
    _require(actor, Perm.ADMIN_USER, group.entity, f"change groups of {group.entity.entity_code}")
    return _rename(actor, group, "group.update", name=name, description=description)


def _rename(actor: User | None, obj: Group | Role, action: str, **changes: str | None):
    obj = type(obj).objects.select_for_update().get(pk=obj.pk)
    before = _snapshot(obj, ("name", "description"))
    for field, value in changes.items():
        if value is not None:
            setattr(obj, field, value)
    _save(obj)
    _audit(
        actor=actor,
        entity=obj.entity,
        action=action,
        obj=obj,
        before=before,
        after=_snapshot(obj, ("name", "description")),
    )
    return obj


@transaction.atomic
def group_delete(*, actor: User | None, group: Group) -> None:
    """Delete a group; its members lose its roles, so the actor must be able to give them."""
    _require(actor, Perm.ADMIN_USER, group.entity, f"delete groups of {group.entity.entity_code}")
    for role, grant in _group_grants(group):
        _require_removable(actor, role, [grant])
    before = {
        "name": group.name,
        "members": sorted(group.members.values_list("trainer_id", flat=True)),
        "roles": sorted(group.roles.values_list("name", flat=True)),
    }
    with _keeps_an_administrator(group.entity, f"delete group {group}"):
        _audit(actor=actor, entity=group.entity, action="group.delete", obj=group, before=before)
        group.delete()


@transaction.atomic
def group_add_member(*, actor: User | None, group: Group, user: User) -> GroupMembership:
    """Add a user of the group's entity. The actor must be able to hand out every grant of the
    group's roles (joining a group gives them)."""
    _require(actor, Perm.ADMIN_USER, group.entity, f"change groups of {group.entity.entity_code}")
    if user.entity_id != group.entity_id:
        raise AccountsError(
            f"{user} belongs to {user.entity_code}; group {group} only takes members of "
            f"{group.entity.entity_code}",
            field="user",
        )
    for role, grant in _group_grants(group):
        _require_grantable(actor, role, [grant])
    membership = _save(GroupMembership(group=group, user=user))
    _audit(
        actor=actor,
        entity=group.entity,
        action="group.add_member",
        obj=group,
        after={"member": user.trainer_id},
    )
    return membership


@transaction.atomic
def group_remove_member(*, actor: User | None, group: Group, user: User) -> None:
    """Take a user out of a group: what the actor could not give, they cannot take away."""
    _require(actor, Perm.ADMIN_USER, group.entity, f"change groups of {group.entity.entity_code}")
    require_covers(actor, user, f"remove {user} from {group}")
    for role, grant in _group_grants(group):
        _require_removable(actor, role, [grant])
    with _keeps_an_administrator(group.entity, f"remove {user} from {group}"):
        deleted, _ = GroupMembership.objects.filter(group=group, user=user).delete()
    if not deleted:
        raise AccountsError(f"{user} is not a member of {group}", field="user")
    _audit(
        actor=actor,
        entity=group.entity,
        action="group.remove_member",
        obj=group,
        before={"member": user.trainer_id},
    )


# =============================================================================
# Roles and grants
# =============================================================================
def _grant_repr(grant: RoleGrant) -> str:
    return f"{grant.permission.code}@{grant.target_entity.entity_code}"


@transaction.atomic
def role_create(
    *,
    actor: User | None,
    entity: Entity,
    name: str,
    description: str = "",
    permissions: Iterable[str | Permission | tuple[str | Permission, Entity]] = (),
) -> Role:
    """Create a role of ``entity``; each permission is a code (granted on ``entity``) or a
    (code, target entity) pair, checked like ``role_grant``."""
    _require(actor, Perm.ADMIN_USER, entity, f"create roles in {entity.entity_code}")
    role = _save(Role(entity=entity, name=name, description=description))
    _audit(
        actor=actor,
        entity=entity,
        action="role.create",
        obj=role,
        after={"name": name, "description": description},
    )
    for item in permissions:
        permission, target = item if isinstance(item, tuple) else (item, None)
        role_grant(actor=actor, role=role, permission=permission, target_entity=target)
    return role


@transaction.atomic
def role_update(
    *, actor: User | None, role: Role, name: str | None = None, description: str | None = None
) -> Role:
    """Rename or describe a role (``admin_user`` on its entity); grants change through
    ``role_grant``/``role_revoke``. The preset roles keep their names: commands and scripts
    name them (``createuser --role trainer``)."""
    _require(actor, Perm.ADMIN_USER, role.entity, f"change roles of {role.entity.entity_code}")
    if name is not None and name != role.name and role.name in _presets(role.entity):
        raise AccountsError(f"the preset role {role.name} keeps its name", field="name")
    return _rename(actor, role, "role.update", name=name, description=description)


def _presets(entity: Entity) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The roles every entity starts with (and ``admin`` in the super entity), by name."""
    if entity.entity_code == settings.SNW_SUPER_ENTITY:
        return {**PRESET_ROLES, **SUPER_ENTITY_PRESET_ROLES}
    return dict(PRESET_ROLES)


@transaction.atomic
def role_delete(*, actor: User | None, role: Role) -> None:
    """Delete a role; only someone who could give each of its grants that still counts."""
    _require(actor, Perm.ADMIN_USER, role.entity, f"delete roles of {role.entity.entity_code}")
    _require_removable(actor, role, _role_grants(role))
    before = {"name": role.name, "grants": sorted(map(_grant_repr, _role_grants(role)))}
    with _keeps_an_administrator(role.entity, f"delete role {role}"):
        _audit(actor=actor, entity=role.entity, action="role.delete", obj=role, before=before)
        role.delete()


@transaction.atomic
def role_grant(
    *,
    actor: User | None,
    role: Role,
    permission: str | Permission,
    target_entity: Entity | None = None,
) -> RoleGrant:
    """Add (permission on target entity, default the role's entity) to ``role``.

    Refused unless the actor holds that ability themselves or, for another entity A, A shares
    with the role's entity a role holding it; ``admin``/``admin_entity`` only by their holders.
    A grant on another entity always needs such a share (it would count for nothing without),
    and ``admin_entity`` only means something on the super entity.
    """
    permission = _permission(permission)
    target = target_entity or role.entity
    grant = RoleGrant(role=role, permission=permission, target_entity=target)
    if permission.code == Perm.ADMIN_ENTITY and target.entity_code != settings.SNW_SUPER_ENTITY:
        raise AccountsError(
            f"admin_entity only exists on the super entity {settings.SNW_SUPER_ENTITY}",
            field="target_entity",
        )
    _require_grantable(actor, role, [grant])
    if target.pk != role.entity_id and not policy.share_allows(
        permission.code, target.entity_code, role.entity.entity_code
    ):
        raise AccountsError(
            f"{target.entity_code} shares no role holding {permission.code} with "
            f"{role.entity.entity_code}",
            field="target_entity",
        )
    if RoleGrant.objects.filter(role=role, permission=permission, target_entity=target).exists():
        raise AccountsError(
            f"{role} already grants {_grant_repr(grant)}", field="permission", code="exists"
        )
    _save(grant)
    _audit(
        actor=actor,
        entity=role.entity,
        action="role.grant",
        obj=role,
        after={"grant": _grant_repr(grant)},
    )
    return grant


@transaction.atomic
def role_revoke(
    *,
    actor: User | None,
    role: Role,
    permission: str | Permission,
    target_entity: Entity | None = None,
) -> None:
    """Remove a grant from ``role``. Needs ``admin_user`` on the role's entity and the right to
    give that grant (unless its share was revoked); refused if it would leave that entity
    without an administrator."""
    permission = _permission(permission)
    target = target_entity or role.entity
    _require(actor, Perm.ADMIN_USER, role.entity, f"change roles of {role.entity.entity_code}")
    _require_removable(
        actor, role, [RoleGrant(role=role, permission=permission, target_entity=target)]
    )
    with _keeps_an_administrator(role.entity, f"revoke {permission.code} from {role}"):
        deleted, _ = RoleGrant.objects.filter(
            role=role, permission=permission, target_entity=target
        ).delete()
    if not deleted:
        raise AccountsError(
            f"{role} does not grant {permission.code}@{target.entity_code}", field="permission"
        )
    _audit(
        actor=actor,
        entity=role.entity,
        action="role.revoke",
        obj=role,
        before={"grant": f"{permission.code}@{target.entity_code}"},
    )


def _holder(role: Role, user: User | None, group: Group | None) -> User | Group:
    if (user is None) == (group is None):
        raise AccountsError("give exactly one of user or group", field="user")
    holder = user if user is not None else group
    if holder.entity_id != role.entity_id:
        kind = "user" if user is not None else "group"
        raise AccountsError(
            f"{kind} {holder} is not in {role.entity.entity_code}; role {role} can only be "
            f"held by {kind}s of {role.entity.entity_code}",
            field=kind,
        )
    return holder


@transaction.atomic
def role_assign(
    *, actor: User | None, role: Role, user: User | None = None, group: Group | None = None
) -> UserRole | GroupRole:
    """Give ``role`` to a user or a group of the role's entity. The actor must be able to hand
    out every grant of the role (so nobody assigns ``admin`` without holding it)."""
    _require(actor, Perm.ADMIN_USER, role.entity, f"assign roles of {role.entity.entity_code}")
    holder = _holder(role, user, group)
    _require_grantable(actor, role, _role_grants(role))
    link = UserRole(role=role, user=user) if user is not None else GroupRole(role=role, group=group)
    if type(link).objects.filter(role=role, **{"user" if user else "group": holder}).exists():
        raise AccountsError(f"{holder} already holds {role}", field="role", code="exists")
    link = _save(link)
    _audit(
        actor=actor,
        entity=role.entity,
        action="role.assign",
        obj=role,
        after={"user" if user is not None else "group": str(holder)},
    )
    return link


@transaction.atomic
def role_unassign(
    *, actor: User | None, role: Role, user: User | None = None, group: Group | None = None
) -> None:
    """Take ``role`` back from a user or group; never from the last administrator, and only
    by someone who could have given it (and who holds everything the user holds)."""
    _require(actor, Perm.ADMIN_USER, role.entity, f"assign roles of {role.entity.entity_code}")
    holder = _holder(role, user, group)
    _require_removable(actor, role, _role_grants(role))
    if user is not None:
        require_covers(actor, user, f"take {role} from {user}")
    links = (
        UserRole.objects.filter(role=role, user=user)
        if user is not None
        else GroupRole.objects.filter(role=role, group=group)
    )
    with _keeps_an_administrator(role.entity, f"take {role} from {holder}"):
        deleted, _ = links.delete()
    if not deleted:
        raise AccountsError(f"{holder} does not hold {role}", field="role")
    _audit(
        actor=actor,
        entity=role.entity,
        action="role.unassign",
        obj=role,
        before={"user" if user is not None else "group": str(holder)},
    )


# =============================================================================
# Shares
# =============================================================================
@transaction.atomic
def share_role_create(*, actor: User | None, role: Role, entity: Entity) -> ShareRole:
    """Entity A (the role's) shares ``role`` with ``entity`` B. Needs ``admin_user`` on A, and
    the actor must be able to hand out every grant of the role (a share lets B's
    administrators hand them out)."""
    _require(actor, Perm.ADMIN_USER, role.entity, f"share roles of {role.entity.entity_code}")
    _require_grantable(actor, role, _role_grants(role))
    if ShareRole.objects.filter(role=role, entity=entity).exists():
        raise AccountsError(
            f"{role} is already shared with {entity.entity_code}", field="entity", code="exists"
        )
    share = _save(ShareRole(role=role, owner_entity=role.entity, entity=entity, created_by=actor))
    _audit(
        actor=actor,
        entity=role.entity,
        action="share_role.create",
        obj=share,
        after={"role": role.name, "with": entity.entity_code},
    )
    return share


@transaction.atomic
def share_role_delete(*, actor: User | None, share: ShareRole) -> None:
    """Stop sharing: the receiving entity's grants that relied on it stop counting at once
    (they stay in their roles, inert, and count again if the role is shared again)."""
    _require(
        actor,
        Perm.ADMIN_USER,
        share.owner_entity,
        f"unshare roles of {share.owner_entity.entity_code}",
    )
    _audit(
        actor=actor,
        entity=share.owner_entity,
        action="share_role.delete",
        obj=share,
        before={"role": share.role.name, "with": share.entity.entity_code},
    )
    share.delete()


# =============================================================================
# Set-valued changes (console forms, API PATCH): one service call per difference
# =============================================================================
def _sync(current: Iterable, wanted: Iterable, *, add, remove) -> None:
    current, wanted = set(current), set(wanted)
    for item in sorted(current - wanted, key=str):
        remove(item)
    for item in sorted(wanted - current, key=str):
        add(item)


@transaction.atomic
def user_set_roles(*, actor: User | None, user: User, roles: Iterable[Role]) -> None:
    """Make ``user``'s direct roles exactly ``roles`` (``role_assign``/``role_unassign``)."""
    _sync(
        user.roles.all(),
        roles,
        add=lambda role: role_assign(actor=actor, role=role, user=user),
        remove=lambda role: role_unassign(actor=actor, role=role, user=user),
    )


@transaction.atomic
def user_set_groups(*, actor: User | None, user: User, groups: Iterable[Group]) -> None:
    _sync(
        user.groups.all(),
        groups,
        add=lambda group: group_add_member(actor=actor, group=group, user=user),
        remove=lambda group: group_remove_member(actor=actor, group=group, user=user),
    )


@transaction.atomic
def group_set_members(*, actor: User | None, group: Group, members: Iterable[User]) -> None:
    _sync(
        group.members.all(),
        members,
        add=lambda user: group_add_member(actor=actor, group=group, user=user),
        remove=lambda user: group_remove_member(actor=actor, group=group, user=user),
    )


@transaction.atomic
def group_set_roles(*, actor: User | None, group: Group, roles: Iterable[Role]) -> None:
    _sync(
        group.roles.all(),
        roles,
        add=lambda role: role_assign(actor=actor, role=role, group=group),
        remove=lambda role: role_unassign(actor=actor, role=role, group=group),
    )


@transaction.atomic
def role_set_grants(
    *, actor: User | None, role: Role, grants: Iterable[tuple[str | Permission, Entity | None]]
) -> None:
    """Make ``role``'s grants exactly ``grants`` ((permission, target or None for the role's
    entity) pairs); each addition passes the no-escalation rule of ``role_grant``."""
    current = [(g.permission.code, g.target_entity) for g in _role_grants(role)]
    wanted = [(_permission(p).code, target or role.entity) for p, target in grants]
    _sync(
        current,
        wanted,
        add=lambda pair: role_grant(
            actor=actor, role=role, permission=pair[0], target_entity=pair[1]
        ),
        remove=lambda pair: role_revoke(
            actor=actor, role=role, permission=pair[0], target_entity=pair[1]
        ),
    )
