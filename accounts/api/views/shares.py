"""``/api/accounts/shares/{id}/``: roles an administered entity shares, or is shared."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status
from rest_framework.response import Response

from accounts import policy, services
from accounts.api.serializers import ShareCreateSerializer, ShareSerializer
from accounts.api.views.base import ENTITY_FILTER, ScopedViewSet, errors
from accounts.models import Entity

__all__ = ["ShareViewSet"]


@extend_schema_view(
    list=extend_schema(
        parameters=[ENTITY_FILTER],
        responses={200: ShareSerializer(many=True), **errors(400, 401, 403)},
    ),
    retrieve=extend_schema(responses={200: ShareSerializer, **errors(401, 403, 404)}),
)
@extend_schema(tags=["accounts"])
class ShareViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    """Shares have nothing to change: delete one and create another."""

    scope = staticmethod(policy.shares_for)
    serializer_class = ShareSerializer
    entity_filter = "owner_entity__entity_code"
    http_method_names = ["get", "post", "delete", "head", "options"]

    @extend_schema(
        request=ShareCreateSerializer, responses={201: ShareSerializer, **errors(400, 401, 403)}
    )
    def create(self, request):
        data = self.input(ShareCreateSerializer)
        # Sharing means naming the receiving entity: its code is the one thing disclosed.
        entity = Entity.objects.filter(entity_code=data["entity"].upper()).first()
        if entity is None:
            raise exceptions.ValidationError({"entity": [f"unknown entity {data['entity']!r}"]})
        share = services.share_role_create(actor=request.user, role=data["role"], entity=entity)
        return Response(self.output(share), status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={204: None, **errors(400, 401, 403, 404)})
    def destroy(self, request, pk=None):
        services.share_role_delete(actor=request.user, share=self.get_changeable_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
