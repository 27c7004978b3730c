"""The base of the accounts resource viewsets: policy-scoped reads, 404/403 disclosure, and
set-valued updates expressed as service calls (domain errors become API errors in
``accounts.api.exceptions``)."""

import re
from collections.abc import Callable

from django.db import transaction
from django.http import Http404
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.response import Response

from accounts import policy
from accounts.api.serializers import MessageSerializer
from accounts.constants import Action

__all__ = [
    "ENTITY_CODE_RE",
    "ENTITY_FILTER",
    "ERRORS",
    "TRAINER_ID_RE",
    "NamedNotFoundMixin",
    "NamedResourceViewSet",
    "ScopedViewSet",
    "errors",
    "named_resource_schema",
]

# Shapes of the query filters, checked before they reach SQL (where e.g. a NUL is an error).
ENTITY_CODE_RE = re.compile(r"[A-Za-z]{2}")
TRAINER_ID_RE = re.compile(r"[A-Za-z]{5}")
ENTITY_FILTER = OpenApiParameter(
    "entity", str, description="Only the rows of this entity code.", pattern="^[A-Za-z]{2}$"
)


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(MessageSerializer, description=description)


#: Documented error answers, by status.
ERRORS = {
    400: _error("Invalid input, or a change the accounts rules refuse."),
    401: _error("Missing or invalid token."),
    403: _error("Visible, but you may not change it (or a task-restricted token)."),
    404: _error("Does not exist, or not visible to you."),
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: ERRORS[code] for code in codes}


class NamedNotFoundMixin:
    """A missing (or invisible) row answers "<kind> <lookup> does not exist", not Django's
    "No <Model> matches the given query." (the same words for both: no disclosure)."""

    def get_object(self):
        try:
            return super().get_object()
        except Http404:
            kind = self.get_queryset().model._meta.verbose_name
            value = self.kwargs.get(self.lookup_url_kwarg or self.lookup_field)
            raise exceptions.NotFound(f"{kind} {value} does not exist") from None


class ScopedViewSet(NamedNotFoundMixin, viewsets.GenericViewSet):
    """Reads go through ``scope(user, Action.VIEW)`` (so a row out of scope answers 404 like a
    missing one); writes fetch the row the same way and answer 403 unless the policy allows
    changing it. Writes run in one transaction through ``accounts.services``."""

    #: ``accounts.policy.<model>s_for``.
    scope: Callable
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        qs = self.scope(self.request.user, Action.VIEW)
        entity = self.request.query_params.get("entity")
        if entity and self.action == "list":
            if not ENTITY_CODE_RE.fullmatch(entity):
                raise exceptions.ValidationError({"entity": ["expected a 2-letter entity code"]})
            qs = qs.filter(**{self.entity_filter: entity.upper()})
        return qs

    entity_filter = "entity__entity_code"

    def get_changeable_object(self):
        obj = self.get_object()
        if not policy.allows(self.request.user, Action.CHANGE, obj):
            raise exceptions.PermissionDenied(f"you may see {obj} but not change it")
        return obj

    def input(self, serializer_class) -> dict:
        serializer = serializer_class(data=self.request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def output(self, obj, **kwargs):
        # Re-read through the scope so the answer shows the committed state.
        fresh = self.scope(self.request.user, Action.VIEW).filter(pk=obj.pk).first() or obj
        return self.get_serializer(fresh).data

    def atomic(self):
        return transaction.atomic()


class NamedResourceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    """Groups and roles: an entity (default: the caller's), a name and a description written
    by the ``*_service`` functions, then the resource's relations (``sync``)."""

    create_serializer = update_serializer = None
    create_service = update_service = delete_service = None
    #: The keyword the services take the object under ("group", "role").
    kind = ""

    def sync(self, obj, data: dict) -> None:
        raise NotImplementedError

    def create(self, request):
        data = self.input(self.create_serializer)
        with self.atomic():
            obj = self.create_service(
                actor=request.user,
                entity=data.get("entity") or request.user.entity,
                name=data["name"],
                description=data.get("description", ""),
            )
            self.sync(obj, data)
        return Response(self.output(obj), status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        obj = self.get_changeable_object()
        data = self.input(self.update_serializer)
        with self.atomic():
            if "name" in data or "description" in data:
                obj = self.update_service(
                    actor=request.user,
                    name=data.get("name"),
                    description=data.get("description"),
                    **{self.kind: obj},
                )
            self.sync(obj, data)
        return Response(self.output(obj))

    def destroy(self, request, pk=None):
        self.delete_service(actor=request.user, **{self.kind: self.get_changeable_object()})
        return Response(status=status.HTTP_204_NO_CONTENT)


def named_resource_schema(output, create, update, kind: str, relations: str):
    """The OpenAPI description of a :class:`NamedResourceViewSet`."""
    return extend_schema_view(
        list=extend_schema(
            parameters=[ENTITY_FILTER], responses={200: output(many=True), **errors(400, 401, 403)}
        ),
        retrieve=extend_schema(responses={200: output, **errors(401, 403, 404)}),
        create=extend_schema(request=create, responses={201: output, **errors(400, 401, 403)}),
        partial_update=extend_schema(
            request=update,
            responses={200: output, **errors(400, 401, 403, 404)},
            description=f"Rename or describe; {relations} replace the {kind}'s sets.",
        ),
        destroy=extend_schema(request=None, responses={204: None, **errors(400, 401, 403, 404)}),
    )
