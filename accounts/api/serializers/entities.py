"""Serializers of entities (managed by holders of ``admin_entity``)."""

from rest_framework import serializers

from accounts.models import Entity

__all__ = ["EntityCreateSerializer", "EntitySerializer", "EntityUpdateSerializer"]


class EntitySerializer(serializers.ModelSerializer):
    class Meta:
        model = Entity
        fields = ["entity_code", "name", "description", "is_active", "created_at"]
        read_only_fields = fields


class EntityCreateSerializer(serializers.Serializer):
    entity_code = serializers.CharField(max_length=2, help_text="2 upper-case letters.")
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class EntityUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)
