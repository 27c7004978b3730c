"""Serializers of groups: members (trainer ids) and roles (ids) are given as sets."""

from rest_framework import serializers

from accounts.api.serializers.fields import (
    ScopedPrimaryKeyField,
    ScopedSlugField,
    administered_entities,
    changeable_roles,
    changeable_users,
)
from accounts.api.serializers.users import NamedRefSerializer
from accounts.models import Entity, Group, Role, User

__all__ = ["GroupCreateSerializer", "GroupSerializer", "GroupUpdateSerializer"]


class GroupSerializer(serializers.ModelSerializer):
    entity = serializers.CharField(source="entity.entity_code", read_only=True)
    members = serializers.SlugRelatedField(many=True, read_only=True, slug_field="trainer_id")
    roles = NamedRefSerializer(many=True, read_only=True)

    class Meta:
        model = Group
        fields = ["id", "entity", "name", "description", "created_at", "members", "roles"]
        read_only_fields = fields


class GroupUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64, required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    members = ScopedSlugField(
        User, changeable_users, slug_field="trainer_id", many=True, required=False
    )
    roles = ScopedPrimaryKeyField(Role, changeable_roles, many=True, required=False)


class GroupCreateSerializer(GroupUpdateSerializer):
    """A new group; ``entity`` defaults to the caller's."""

    entity = ScopedSlugField(
        Entity, administered_entities, slug_field="entity_code", required=False
    )
    name = serializers.CharField(max_length=64)
