"""Serializer of ``GET /auth/me``: who the token belongs to and what they may do."""

from rest_framework import serializers

from accounts import policy

__all__ = ["MeSerializer"]


class MeEntitySerializer(serializers.Serializer):
    entity_code = serializers.CharField()
    name = serializers.CharField()


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    trainer_id = serializers.CharField()
    user_code = serializers.CharField()
    name = serializers.CharField(source="full_name")
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    email = serializers.CharField()
    entity = MeEntitySerializer()
    abilities = serializers.SerializerMethodField(
        help_text="Permission codes held, per entity code."
    )
    is_admin = serializers.SerializerMethodField()
    can_manage_entities = serializers.SerializerMethodField()

    def get_abilities(self, user) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        for perm, code in sorted(policy.abilities(user)):
            result.setdefault(code, []).append(perm)
        return result

    def get_is_admin(self, user) -> bool:
        return policy.is_admin(user)

    def get_can_manage_entities(self, user) -> bool:
        return policy.can_manage_entities(user)
