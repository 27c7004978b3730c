"""``/api/accounts/users/{trainer_id}/``: users of the entities one administers (and
oneself, read-only)."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.response import Response

from accounts import policy, services
from accounts.api.serializers import UserCreateSerializer, UserSerializer, UserUpdateSerializer
from accounts.api.views.base import ENTITY_FILTER, ScopedViewSet, errors

__all__ = ["UserViewSet"]


@extend_schema_view(
    list=extend_schema(
        parameters=[ENTITY_FILTER],
        responses={200: UserSerializer(many=True), **errors(400, 401, 403)},
    ),
    retrieve=extend_schema(responses={200: UserSerializer, **errors(401, 403, 404)}),
)
@extend_schema(tags=["accounts"])
class UserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    scope = staticmethod(policy.users_for)
    serializer_class = UserSerializer
    lookup_field = "trainer_id"

    def get_queryset(self):
        return super().get_queryset().prefetch_related("roles", "groups")

    @extend_schema(
        request=UserCreateSerializer, responses={201: UserSerializer, **errors(400, 401, 403)}
    )
    def create(self, request):
        data = self.input(UserCreateSerializer)
        entity = data.pop("entity", None) or request.user.entity
        user = services.user_create(actor=request.user, entity=entity, **data)
        return Response(self.output(user), status=status.HTTP_201_CREATED)

    @extend_schema(
        request=UserUpdateSerializer,
        responses={200: UserSerializer, **errors(400, 401, 403, 404)},
        description="Change names, email, activity, password; `roles`/`groups` replace the "
        "user's sets.",
    )
    def partial_update(self, request, trainer_id=None):
        user = self.get_changeable_object()
        data = self.input(UserUpdateSerializer)
        actor = request.user
        with self.atomic():
            names = {k: data[k] for k in services.USER_EDITABLE if k in data}
            if names:
                user = services.user_update(actor=actor, user=user, **names)
            if "password" in data:
                services.user_set_password(actor=actor, user=user, password=data["password"])
            if "is_active" in data and data["is_active"] != user.is_active:
                user = services.user_deactivate(actor=actor, user=user, is_active=data["is_active"])
            if "roles" in data:
                services.user_set_roles(actor=actor, user=user, roles=data["roles"])
            if "groups" in data:
                services.user_set_groups(actor=actor, user=user, groups=data["groups"])
        return Response(self.output(user))

    @extend_schema(
        request=None,
        responses={204: None, **errors(400, 401, 403, 404)},
        description="Deactivate the user (users are kept: their trainer id names their tasks).",
    )
    def destroy(self, request, trainer_id=None):
        user = self.get_changeable_object()
        services.user_deactivate(actor=request.user, user=user)
        return Response(status=status.HTTP_204_NO_CONTENT)
