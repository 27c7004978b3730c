"""The SNW console's model pages (Django admin, scoped per entity): see ``base.ScopedAdmin``."""

from accounts.admin.models import (
    AuditEventAdmin,
    EntityAdmin,
    GroupAdmin,
    RoleAdmin,
    ShareRoleAdmin,
    UserAdmin,
)

__all__ = [
    "AuditEventAdmin",
    "EntityAdmin",
    "GroupAdmin",
    "RoleAdmin",
    "ShareRoleAdmin",
    "UserAdmin",
]
