"""Serializers of roles and their grants (permission on a target entity)."""

from rest_framework import serializers

from accounts import policy
from accounts.api.serializers.fields import ScopedSlugField, administered_entities
from accounts.models import Entity, Permission, Role

__all__ = ["GrantSerializer", "RoleCreateSerializer", "RoleSerializer", "RoleUpdateSerializer"]


class GrantSerializer(serializers.Serializer):
    """One grant; ``entity`` defaults to the role's own entity."""

    permission = serializers.SlugRelatedField(slug_field="code", queryset=Permission.objects.all())
    entity = ScopedSlugField(
        Entity,
        policy.grant_target_entities,
        slug_field="entity_code",
        required=False,
        allow_null=True,
        default=None,
    )


class GrantOutSerializer(serializers.Serializer):
    permission = serializers.CharField(source="permission.code")
    entity = serializers.CharField(source="target_entity.entity_code")


class RoleSerializer(serializers.ModelSerializer):
    entity = serializers.CharField(source="entity.entity_code", read_only=True)
    grants = GrantOutSerializer(many=True, read_only=True)

    class Meta:
        model = Role
        fields = ["id", "entity", "name", "description", "created_at", "grants"]
        read_only_fields = fields


class RoleUpdateSerializer(serializers.Serializer):
    """``grants`` replaces the role's grants (each addition checked: no escalation)."""

    name = serializers.CharField(max_length=64, required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    grants = GrantSerializer(many=True, required=False)


class RoleCreateSerializer(RoleUpdateSerializer):
    entity = ScopedSlugField(
        Entity, administered_entities, slug_field="entity_code", required=False
    )
    name = serializers.CharField(max_length=64)
