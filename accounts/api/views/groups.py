"""``/api/accounts/groups/{id}/``: groups of the entities one administers (and one's own
groups, read-only)."""

from drf_spectacular.utils import extend_schema

from accounts import policy, services
from accounts.api.serializers import GroupCreateSerializer, GroupSerializer, GroupUpdateSerializer
from accounts.api.views.base import NamedResourceViewSet, named_resource_schema

__all__ = ["GroupViewSet"]


@named_resource_schema(
    GroupSerializer, GroupCreateSerializer, GroupUpdateSerializer, "group", "`members`/`roles`"
)
@extend_schema(tags=["accounts"])
class GroupViewSet(NamedResourceViewSet):
    scope = staticmethod(policy.groups_for)
    serializer_class = GroupSerializer
    create_serializer = GroupCreateSerializer
    update_serializer = GroupUpdateSerializer
    create_service = staticmethod(services.group_create)
    update_service = staticmethod(services.group_update)
    delete_service = staticmethod(services.group_delete)
    kind = "group"

    def get_queryset(self):
        return super().get_queryset().prefetch_related("members", "roles")

    def sync(self, group, data):
        actor = self.request.user
        if "members" in data:
            services.group_set_members(actor=actor, group=group, members=data["members"])
        if "roles" in data:
            services.group_set_roles(actor=actor, group=group, roles=data["roles"])
