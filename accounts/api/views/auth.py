"""Authentication routes: login (``/auth/token``), refresh (``/auth/token/refresh``), logout,
persistent tokens (``/auth/tokens``).

Thin views: they parse input, call :mod:`accounts.tokens`, and serialize. Errors answer
``{"message": …}`` (:mod:`accounts.api.exceptions`).
"""

import time

from django.conf import settings
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import tokens
from accounts.api.serializers import (
    MessageSerializer,
    PersistentTokenCreatedSerializer,
    PersistentTokenCreateSerializer,
    PersistentTokenSerializer,
    TokenRefreshResponseSerializer,
    TokenRequestSerializer,
    TokenResponseSerializer,
)
from accounts.api.views.base import TRAINER_ID_RE, NamedNotFoundMixin
from accounts.authentication import PasswordBasicAuthentication, ServiceUnavailable

__all__ = ["LogoutView", "PersistentTokenViewSet", "TokenRefreshView", "TokenView"]

_UNAUTHORIZED = OpenApiResponse(MessageSerializer, description="Missing or invalid credentials.")
_FORBIDDEN = OpenApiResponse(MessageSerializer, description="A task-restricted token.")
_ONE_TOKEN_ERRORS = {
    401: _UNAUTHORIZED,
    403: _FORBIDDEN,
    404: OpenApiResponse(MessageSerializer, description="No such token you may see."),
}


# =============================================================================
# Login: temporary tokens
# =============================================================================
_TOKEN_SCHEMA = {
    "tags": ["auth"],
    "responses": {
        200: TokenResponseSerializer,
        400: OpenApiResponse(MessageSerializer, description="`duration` out of range."),
        401: _UNAUTHORIZED,
        429: OpenApiResponse(MessageSerializer, description="Too many failed logins."),
    },
}
_DURATION = OpenApiParameter(
    "duration", OpenApiTypes.INT, description="Seconds of validity (default 600)."
)


class TokenView(APIView):
    """Trade HTTP Basic ``trainer_id:password`` for a temporary ``_T_`` token.

    The only route that checks a password; failures are rate limited per user name and client
    address (429 with ``Retry-After``).
    """

    authentication_classes = [PasswordBasicAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="auth_token_get", parameters=[_DURATION], **_TOKEN_SCHEMA)
    def get(self, request):
        return self._issue(request, request.query_params)

    @extend_schema(
        operation_id="auth_token_create",
        parameters=[_DURATION],
        request=TokenRequestSerializer,
        **_TOKEN_SCHEMA,
    )
    def post(self, request):
        data = request.data if "duration" in request.data else request.query_params
        return self._issue(request, data)

    def _issue(self, request, data):
        serializer = TokenRequestSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        try:
            issued = tokens.temporary_token_create(
                user=request.user, duration=serializer.validated_data.get("duration")
            )
        except tokens.TokenServiceUnavailable:
            raise ServiceUnavailable() from None
        body = TokenResponseSerializer({"token": issued.token, "duration": issued.duration}).data
        return Response(body, headers={"Cache-Control": "no-store"})


# =============================================================================
# Refresh: a temporary token buys a new one, within the session's age limit
# =============================================================================
class TokenRefreshView(APIView):
    """Trade a valid ``_T_`` token for a new one of the same session (no password).

    The new token keeps the session start of the login, and is never valid past
    ``TOKEN_MAX_SESSION_AGE`` seconds after it; the presented token stays valid until its own
    expiry. Persistent tokens (nothing to refresh), task tokens and sessions at their age limit
    are refused with 403; an expired or revoked token with 401.
    """

    @extend_schema(
        tags=["auth"],
        operation_id="auth_token_refresh",
        parameters=[_DURATION],
        request=TokenRequestSerializer,
        responses={
            200: TokenRefreshResponseSerializer,
            400: OpenApiResponse(MessageSerializer, description="`duration` out of range."),
            401: _UNAUTHORIZED,
            403: OpenApiResponse(
                MessageSerializer,
                description="A persistent or task token, or a session at its age limit.",
            ),
        },
    )
    def post(self, request):
        data = request.data if "duration" in request.data else request.query_params
        serializer = TokenRequestSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        if not isinstance(request.auth, tokens.TokenInfo):
            raise PermissionDenied("Only a token can be refreshed.")
        try:
            issued = tokens.temporary_token_refresh(
                user=request.user,
                info=request.auth,
                duration=serializer.validated_data.get("duration"),
            )
        except tokens.TokenNotRefreshable as exc:
            raise PermissionDenied(str(exc)) from None
        except tokens.TokenServiceUnavailable:
            raise ServiceUnavailable() from None
        left = request.auth.session_start + settings.SNW_TOKEN_MAX_SESSION_AGE - time.time()
        body = {"token": issued.token, "duration": issued.duration, "session_expires_in": left}
        return Response(
            TokenRefreshResponseSerializer(body).data, headers={"Cache-Control": "no-store"}
        )


# =============================================================================
# Logout: revoke the presented token
# =============================================================================
class LogoutView(APIView):
    """Revoke the token this request carries (temporary or persistent)."""

    @extend_schema(
        tags=["auth"],
        request=None,
        responses={204: OpenApiResponse(description="Revoked."), 401: _UNAUTHORIZED},
    )
    def post(self, request):
        if not isinstance(request.auth, tokens.TokenInfo):
            raise ValidationError("This request carries no token to revoke.")
        try:
            tokens.token_revoke(request.auth)
        except tokens.TokenServiceUnavailable:
            raise ServiceUnavailable() from None
        return Response(status=status.HTTP_204_NO_CONTENT)


# =============================================================================
# Persistent tokens
# =============================================================================
@extend_schema(tags=["auth"])
class PersistentTokenViewSet(
    NamedNotFoundMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """``_P_`` tokens for scripts: create your own (shown once), list and revoke yours — and,
    for administrators of an entity (``admin_user``), those of its users. Others' tokens out
    of your scope answer 404."""

    serializer_class = PersistentTokenSerializer
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        qs = tokens.persistent_token_list(actor=self.request.user)
        owner = self.request.query_params.get("owner")
        if owner:
            if not TRAINER_ID_RE.fullmatch(owner):
                raise ValidationError({"owner": ["expected a trainer id (5 letters)"]})
            qs = qs.filter(owner__trainer_id=owner)
        return qs.order_by("-created_at", "-id")

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": timezone.now()}

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "owner",
                str,
                description="Only the tokens of this trainer id.",
                pattern="^[A-Za-z]{5}$",
            )
        ],
        responses={
            200: PersistentTokenSerializer(many=True),
            400: OpenApiResponse(MessageSerializer, description="Malformed `owner`."),
            401: _UNAUTHORIZED,
            403: _FORBIDDEN,
        },
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={200: PersistentTokenSerializer, **_ONE_TOKEN_ERRORS})
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        request=PersistentTokenCreateSerializer,
        responses={
            201: PersistentTokenCreatedSerializer,
            400: MessageSerializer,
            401: _UNAUTHORIZED,
            403: _FORBIDDEN,
        },
    )
    def create(self, request):
        serializer = PersistentTokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row, raw = tokens.persistent_token_create(actor=request.user, **serializer.validated_data)
        body = {**self.get_serializer(row).data, "token": raw}
        return Response(body, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})

    @extend_schema(responses={204: None, **_ONE_TOKEN_ERRORS})
    def destroy(self, request, pk=None):
        tokens.persistent_token_revoke(actor=request.user, token=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
