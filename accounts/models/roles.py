"""Authorization data: permissions, roles and their grants, groups, and roles shared between
entities. What these rows *mean* is decided in one place only: ``accounts.policy``."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from accounts.models.identity import Entity

__all__ = [
    "Group",
    "GroupMembership",
    "GroupRole",
    "Permission",
    "Role",
    "RoleGrant",
    "ShareRole",
    "UserRole",
]


def check_same_entity(left, right, message: str, field: str) -> None:
    """Reject a link between objects of two entities (the rule the DB cannot express)."""
    if left is not None and right is not None and left.entity_id != right.entity_id:
        raise ValidationError({field: message}, code="cross_entity")


class Permission(models.Model):
    """One of the fixed permissions of the reference README; seeded by a data migration."""

    code = models.CharField(max_length=32, unique=True)
    description = models.CharField(max_length=200)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(code__regex=r"^[a-z_]+$"), name="permission_code_snake_case"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class Role(models.Model):
    """A named set of (permission, target entity) grants, owned by an entity and held by users
    and groups of that same entity."""

    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="roles")
    name = models.CharField(max_length=64)
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="UserRole", related_name="roles", blank=True
    )

    class Meta:
        ordering = ["entity__entity_code", "name"]
        constraints = [
            models.UniqueConstraint(fields=["entity", "name"], name="role_name_unique_in_entity"),
            models.CheckConstraint(condition=~models.Q(name=""), name="role_name_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.entity.entity_code}/{self.name}"


class RoleGrant(models.Model):
    """One permission of a role, on a target entity (the role's own entity by default). A grant
    on another entity only counts while that entity shares a role holding the permission."""

    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="grants")
    permission = models.ForeignKey(Permission, on_delete=models.PROTECT, related_name="grants")
    target_entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="+")

    class Meta:
        ordering = ["role", "permission__code", "target_entity__entity_code"]
        constraints = [
            models.UniqueConstraint(
                fields=["role", "permission", "target_entity"], name="role_grant_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.permission.code}@{self.target_entity.entity_code}"

    def save(self, *args, **kwargs):
        if self.target_entity_id is None and self.role_id is not None:
            self.target_entity_id = self.role.entity_id
        super().save(*args, **kwargs)


class Group(models.Model):
    """A set of users of one entity; every member holds the group's roles."""

    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=64)
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="GroupMembership", related_name="groups", blank=True
    )
    roles = models.ManyToManyField(Role, through="GroupRole", related_name="groups", blank=True)

    class Meta:
        ordering = ["entity__entity_code", "name"]
        constraints = [
            models.UniqueConstraint(fields=["entity", "name"], name="group_name_unique_in_entity"),
            models.CheckConstraint(condition=~models.Q(name=""), name="group_name_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.entity.entity_code}/{self.name}"


class _SameEntityLink(models.Model):
    """Base of the link tables whose two ends must belong to the same entity.

    The check runs in ``clean()``, in ``save()`` and (for ``.add()``/``.set()`` on the m2m
    managers, which bypass ``save()``) in an ``m2m_changed`` handler in ``accounts.signals``.
    """

    #: (left field, right field, field named in the error, message)
    same_entity: tuple[str, str, str, str]

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        self.clean()
        super().save(*args, **kwargs)

    def clean(self):
        super().clean()
        left, right, field, message = self.same_entity
        check_same_entity(getattr(self, left), getattr(self, right), message, field)


class GroupMembership(_SameEntityLink):
    """A user's membership of a group of their own entity."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    same_entity = ("group", "user", "user", "A group only takes members of its own entity.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "user"], name="group_membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.group}"


class UserRole(_SameEntityLink):
    """A role held directly by a user of the role's entity."""

    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="user_links")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="role_links"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    same_entity = ("role", "user", "role", "A user only holds roles of their own entity.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["role", "user"], name="user_role_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} holds {self.role}"


class GroupRole(_SameEntityLink):
    """A role held by a group of the role's entity."""

    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="group_links")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="role_links")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    same_entity = ("role", "group", "role", "A group only holds roles of its own entity.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["role", "group"], name="group_role_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.group} holds {self.role}"


class ShareRole(models.Model):
    """Entity A (``owner_entity``, the role's entity) shares one of its roles with entity B
    (``entity``). B's administrators may then build roles of B holding the shared role's
    permissions on A; deleting the share removes those abilities at once."""

    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="shares")
    owner_entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="shares_given")
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="shares_received")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["owner_entity__entity_code", "entity__entity_code", "role__name"]
        constraints = [
            models.UniqueConstraint(fields=["role", "entity"], name="share_role_unique_pair"),
            models.CheckConstraint(
                condition=~models.Q(owner_entity=models.F("entity")),
                name="share_role_not_with_itself",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role} shared with {self.entity.entity_code}"

    def save(self, *args, **kwargs):
        if self.role_id is not None:
            self.owner_entity_id = self.role.entity_id
        super().save(*args, **kwargs)

    def clean(self):
        super().clean()
        if self.role_id is not None:
            # owner_entity is denormalised from the role so the DB can refuse A == B.
            self.owner_entity_id = self.role.entity_id
        if self.owner_entity_id is not None and self.owner_entity_id == self.entity_id:
            raise ValidationError({"entity": "An entity cannot share a role with itself."})
