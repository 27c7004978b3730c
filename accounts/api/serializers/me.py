"""Serializers of ``/auth/me`` (who the token belongs to, what they may do, their profile) and
``/auth/password``."""

from rest_framework import serializers

from accounts import policy

__all__ = ["MeSerializer", "MeUpdateSerializer", "PasswordChangeSerializer"]


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


class MeUpdateSerializer(serializers.Serializer):
    """What a user may change of their own profile; anything else is refused by name."""

    first_name = serializers.CharField(required=False, allow_blank=True, max_length=150)
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=150)
    email = serializers.EmailField(required=False, allow_blank=True)

    def validate(self, attrs):
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            message = "cannot be changed here (only first_name, last_name, email)"
            raise serializers.ValidationError(dict.fromkeys(unknown, message))
        if not attrs:
            raise serializers.ValidationError("nothing to change")
        return attrs


class PasswordChangeSerializer(serializers.Serializer):
    current_password = serializers.CharField(trim_whitespace=False, write_only=True)
    new_password = serializers.CharField(trim_whitespace=False, write_only=True)
