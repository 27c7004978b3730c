"""``GET /auth/me``: the caller, their entity and abilities."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.serializers import MeSerializer
from accounts.api.views.base import errors

__all__ = ["MeView"]


class MeView(APIView):
    """Who the token belongs to: user, entity and abilities (permission codes per entity)."""

    @extend_schema(tags=["auth"], responses={200: MeSerializer, **errors(401, 403)})
    def get(self, request):
        return Response(MeSerializer(request.user).data)
