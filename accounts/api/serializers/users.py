"""Serializers of users: output, creation and update (names, activity, password, roles and
groups given as sets)."""

from rest_framework import serializers

from accounts.api.serializers.fields import (
    ScopedPrimaryKeyField,
    ScopedSlugField,
    administered_entities,
    changeable_groups,
    changeable_roles,
)
from accounts.models import Entity, Group, Role, User

__all__ = ["NamedRefSerializer", "UserCreateSerializer", "UserSerializer", "UserUpdateSerializer"]


class NamedRefSerializer(serializers.Serializer):
    """A role or group as referenced from another object."""

    id = serializers.IntegerField()
    name = serializers.CharField()


class UserSerializer(serializers.ModelSerializer):
    entity = serializers.CharField(source="entity.entity_code", read_only=True)
    roles = NamedRefSerializer(many=True, read_only=True)
    groups = NamedRefSerializer(many=True, read_only=True)

    class Meta:
        model = User
        fields = [
            "id",
            "trainer_id",
            "user_code",
            "entity",
            "first_name",
            "last_name",
            "email",
            "is_active",
            "date_joined",
            "roles",
            "groups",
        ]
        read_only_fields = fields


def _roles_field():
    return ScopedPrimaryKeyField(Role, changeable_roles, many=True, required=False)


def _groups_field():
    return ScopedPrimaryKeyField(Group, changeable_groups, many=True, required=False)


class UserCreateSerializer(serializers.Serializer):
    """A new user; ``entity`` defaults to the caller's. Roles and groups must be of it."""

    entity = ScopedSlugField(
        Entity, administered_entities, slug_field="entity_code", required=False
    )
    user_code = serializers.CharField(max_length=3, help_text="3 letters, unique in the entity.")
    password = serializers.CharField(
        write_only=True, required=False, allow_null=True, default=None, trim_whitespace=False
    )
    first_name = serializers.CharField(required=False, allow_blank=True, default="")
    last_name = serializers.CharField(required=False, allow_blank=True, default="")
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    roles = _roles_field()
    groups = _groups_field()


class UserUpdateSerializer(serializers.Serializer):
    """Changes to a user. ``roles``/``groups`` replace the current sets. The entity and user
    code never change (the trainer id prefixes the user's tasks)."""

    first_name = serializers.CharField(required=False, allow_blank=True)
    last_name = serializers.CharField(required=False, allow_blank=True)
    email = serializers.EmailField(required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)
    password = serializers.CharField(
        write_only=True, required=False, allow_null=True, trim_whitespace=False
    )
    roles = _roles_field()
    groups = _groups_field()

    def validate(self, attrs):
        fixed = {"entity", "user_code", "trainer_id"} & set(self.initial_data)
        if fixed:
            raise serializers.ValidationError(
                {
                    name: "cannot be changed: create a new user instead (the trainer id "
                    "prefixes the user's tasks)"
                    for name in sorted(fixed)
                }
            )
        return attrs
