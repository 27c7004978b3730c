"""``/api/accounts/entities/``: organisations. Everyone sees the entities they hold abilities
on; only holders of ``admin_entity`` create, change and deactivate them."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.response import Response

from accounts import policy, services
from accounts.api.serializers import (
    EntityCreateSerializer,
    EntitySerializer,
    EntityUpdateSerializer,
)
from accounts.api.views.base import ENTITY_FILTER, ScopedViewSet, errors

__all__ = ["EntityViewSet"]


@extend_schema_view(
    list=extend_schema(
        parameters=[ENTITY_FILTER],
        responses={200: EntitySerializer(many=True), **errors(400, 401, 403)},
    ),
    retrieve=extend_schema(responses={200: EntitySerializer, **errors(401, 403, 404)}),
)
@extend_schema(tags=["accounts"])
class EntityViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    scope = staticmethod(policy.entities_for)
    serializer_class = EntitySerializer
    lookup_field = "entity_code"
    entity_filter = "entity_code"

    def get_object(self):
        self.kwargs[self.lookup_field] = self.kwargs[self.lookup_field].upper()
        return super().get_object()

    @extend_schema(
        request=EntityCreateSerializer, responses={201: EntitySerializer, **errors(400, 401, 403)}
    )
    def create(self, request):
        data = self.input(EntityCreateSerializer)
        entity = services.entity_create(actor=request.user, **data)
        return Response(self.output(entity), status=status.HTTP_201_CREATED)

    @extend_schema(
        request=EntityUpdateSerializer,
        responses={200: EntitySerializer, **errors(400, 401, 403, 404)},
    )
    def partial_update(self, request, entity_code=None):
        entity = self.get_changeable_object()
        data = self.input(EntityUpdateSerializer)
        entity = services.entity_update(actor=request.user, entity=entity, **data)
        return Response(self.output(entity))

    @extend_schema(
        request=None,
        responses={204: None, **errors(400, 401, 403, 404)},
        description="Deactivate the entity (entities are never deleted: tasks name them).",
    )
    def destroy(self, request, entity_code=None):
        entity = self.get_changeable_object()
        services.entity_update(actor=request.user, entity=entity, is_active=False)
        return Response(status=status.HTTP_204_NO_CONTENT)
