"""Serializers of share roles: entity A shares one of its roles with entity B."""

from rest_framework import serializers

from accounts.api.serializers.fields import ScopedPrimaryKeyField, changeable_roles
from accounts.models import Role, ShareRole

__all__ = ["ShareCreateSerializer", "ShareSerializer"]


class ShareSerializer(serializers.ModelSerializer):
    role_name = serializers.CharField(source="role.name", read_only=True)
    owner_entity = serializers.CharField(source="owner_entity.entity_code", read_only=True)
    entity = serializers.CharField(source="entity.entity_code", read_only=True)
    created_by = serializers.CharField(
        source="created_by.trainer_id", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = ShareRole
        fields = ["id", "role", "role_name", "owner_entity", "entity", "created_by", "created_at"]
        read_only_fields = fields


class ShareCreateSerializer(serializers.Serializer):
    role = ScopedPrimaryKeyField(Role, changeable_roles, help_text="A role of your entity.")
    entity = serializers.CharField(
        max_length=2, help_text="Code of the entity the role is shared with."
    )
