"""Models of the accounts app, one module per concept."""

from accounts.models.audit import AuditEvent
from accounts.models.identity import Entity, User
from accounts.models.roles import (
    Group,
    GroupMembership,
    GroupRole,
    Permission,
    Role,
    RoleGrant,
    ShareRole,
    UserRole,
)
from accounts.models.tokens import PersistentToken

__all__ = [
    "AuditEvent",
    "Entity",
    "Group",
    "GroupMembership",
    "GroupRole",
    "Permission",
    "PersistentToken",
    "Role",
    "RoleGrant",
    "ShareRole",
    "User",
    "UserRole",
]
