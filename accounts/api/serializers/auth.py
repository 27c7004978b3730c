"""Serializers of authentication: login (temporary tokens) and persistent tokens."""

from django.conf import settings
from rest_framework import serializers

from accounts.models import PersistentToken

__all__ = [
    "MessageSerializer",
    "PersistentTokenCreateSerializer",
    "PersistentTokenCreatedSerializer",
    "PersistentTokenSerializer",
    "TokenRequestSerializer",
    "TokenResponseSerializer",
]


class MessageSerializer(serializers.Serializer):
    """An error or information answer (documentation only)."""

    message = serializers.CharField()


# =============================================================================
# Temporary tokens
# =============================================================================
class TokenRequestSerializer(serializers.Serializer):
    """Input of ``/auth/token``: an optional duration (query string, or body for POST)."""

    duration = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Seconds of validity; at most the SNW_TOKEN_MAX_DURATION setting.",
    )

    def validate_duration(self, value: int) -> int:
        # Read at request time, not import time, so the setting can change (and tests override).
        maximum = settings.SNW_TOKEN_MAX_DURATION
        if value > maximum:
            raise serializers.ValidationError(f"must be at most {maximum} seconds.")
        return value


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="A _T_ token: send it as `Authorization: Bearer`.")
    duration = serializers.IntegerField(help_text="Seconds until it expires.")


class TokenRefreshResponseSerializer(TokenResponseSerializer):
    session_expires_in = serializers.IntegerField(
        help_text="Seconds left before the session reaches TOKEN_MAX_SESSION_AGE: no refresh "
        "gives a token valid past it (log in again then)."
    )


# =============================================================================
# Persistent tokens
# =============================================================================
class PersistentTokenCreateSerializer(serializers.Serializer):
    """Input of ``POST /auth/tokens``; the owner is always the caller."""

    name = serializers.CharField(max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class PersistentTokenSerializer(serializers.ModelSerializer):
    """A persistent token as listed: never its secret, nor its digest."""

    owner = serializers.CharField(source="owner.trainer_id", read_only=True)
    active = serializers.SerializerMethodField()

    class Meta:
        model = PersistentToken
        fields = [
            "id",
            "name",
            "owner",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "active",
        ]
        read_only_fields = fields

    def get_active(self, obj: PersistentToken) -> bool:
        now = self.context["now"]
        return obj.revoked_at is None and (obj.expires_at is None or obj.expires_at > now)


class PersistentTokenCreatedSerializer(PersistentTokenSerializer):
    """The answer to a creation: the only time the ``_P_`` token is shown."""

    token = serializers.CharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(PersistentTokenSerializer.Meta):
        fields = [*PersistentTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields
