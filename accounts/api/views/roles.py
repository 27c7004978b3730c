"""``/api/accounts/roles/{id}/``: roles and their grants. Every added grant passes the
no-escalation rule of ``accounts.policy.grant_refusal`` (through ``accounts.services``)."""

from drf_spectacular.utils import extend_schema

from accounts import policy, services
from accounts.api.serializers import RoleCreateSerializer, RoleSerializer, RoleUpdateSerializer
from accounts.api.views.base import NamedResourceViewSet, named_resource_schema

__all__ = ["RoleViewSet"]


@named_resource_schema(
    RoleSerializer, RoleCreateSerializer, RoleUpdateSerializer, "role", "`grants`"
)
@extend_schema(tags=["accounts"])
class RoleViewSet(NamedResourceViewSet):
    scope = staticmethod(policy.roles_for)
    serializer_class = RoleSerializer
    create_serializer = RoleCreateSerializer
    update_serializer = RoleUpdateSerializer
    create_service = staticmethod(services.role_create)
    update_service = staticmethod(services.role_update)
    delete_service = staticmethod(services.role_delete)
    kind = "role"

    def get_queryset(self):
        return (
            super().get_queryset().prefetch_related("grants__permission", "grants__target_entity")
        )

    def sync(self, role, data):
        if "grants" in data:
            pairs = [(g["permission"], g.get("entity")) for g in data["grants"]]
            services.role_set_grants(actor=self.request.user, role=role, grants=pairs)
