"""Self-service: ``/auth/me`` (who I am, my profile) and ``/auth/password`` (my password)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.api.serializers import (
    MeSerializer,
    MessageSerializer,
    MeUpdateSerializer,
    PasswordChangeSerializer,
)
from accounts.api.views.base import errors
from accounts.authentication import password_attempt

__all__ = ["MeView", "PasswordView"]


class MeView(APIView):
    """Who the token belongs to: user, entity and abilities (permission codes per entity)."""

    @extend_schema(tags=["auth"], responses={200: MeSerializer, **errors(401, 403)})
    def get(self, request):
        return Response(MeSerializer(request.user).data)

    @extend_schema(
        tags=["auth"],
        request=MeUpdateSerializer,
        responses={200: MeSerializer, **errors(400, 401, 403)},
        description="Change your own names or email (entity, user code and roles are the "
        "administrators').",
    )
    def patch(self, request):
        serializer = MeUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_update(
            actor=request.user, user=request.user, **serializer.validated_data
        )
        return Response(MeSerializer(user).data)


class PasswordView(APIView):
    """Change one's own password, proving the current one.

    Wrong current passwords count as failed logins of the user (:mod:`accounts.ratelimit`): a
    stolen token cannot be used to guess the password faster than ``/auth/token`` allows. On
    success every token of the user stops working, this one included: log in again.
    """

    @extend_schema(
        tags=["auth"],
        request=PasswordChangeSerializer,
        responses={
            200: MessageSerializer,
            **errors(400, 401, 403),
            429: OpenApiResponse(MessageSerializer, description="Too many wrong passwords."),
        },
    )
    def post(self, request):
        serializer = PasswordChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data, user = serializer.validated_data, request.user
        proven = password_attempt(
            request,
            user.trainer_id,
            lambda: user.check_password(data["current_password"]),
            too_many="Too many wrong passwords; retry later",
        )
        if not proven:
            raise exceptions.ValidationError({"current_password": ["wrong password"]})
        try:
            services.user_set_password(actor=user, user=user, password=data["new_password"])
        except services.AccountsError as exc:  # the password rules: name this route's field
            raise exceptions.ValidationError({"new_password": [exc.message]}) from None
        return Response({"message": "Password changed; every token of yours is revoked."})
