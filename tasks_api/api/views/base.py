"""Base of the task API views: the engine, the exception handler, fail-closed action maps."""

from __future__ import annotations

import json

from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.utils import OpenApiResponse
from rest_framework import viewsets
from rest_framework.renderers import BaseRenderer, JSONRenderer

from accounts.api.serializers import MessageSerializer
from tasks_api.engine import get_engine
from tasks_api.exceptions import PayloadTooLarge, task_exception_handler

__all__ = ["EngineViewSet", "PassthroughRenderer", "PlainTextRenderer", "errors", "read_body"]


def errors(*codes: int, **extra: str) -> dict:
    """OpenAPI error responses (``{"message": …}``) for ``codes`` (401, 403, 503 and 507
    always)."""
    texts = {
        400: "Invalid input; the message names the field.",
        401: "Missing, invalid or expired token.",
        403: "Visible but not allowed, or a task token outside its task's callbacks.",
        404: "Unknown, or not visible to you.",
        409: "Conflicts with the current state.",
        413: "Body too large.",
        503: "The task store is unavailable.",
        507: "Redis is full (its maxmemory): the write was refused and nothing was stored.",
    }
    texts.update({str(k): v for k, v in extra.items()})
    return {
        code: OpenApiResponse(MessageSerializer, description=texts[code])
        for code in sorted({401, 403, 503, 507, *codes})
    }


class PassthroughRenderer(BaseRenderer):
    """Lets clients accept raw bodies (logs, files); views return HttpResponse for those."""

    media_type = "application/octet-stream"
    format = "raw"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes | str):
            return data
        return json.dumps(data).encode()


class PlainTextRenderer(PassthroughRenderer):
    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"


def read_body(request, limit: int) -> bytes:
    """The raw request body, refusing more than ``limit`` bytes (413) before reading it."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise PayloadTooLarge(f"body is {length} bytes; the limit is {limit}")
    stream = request.stream
    data = stream.read(limit + 1) if stream is not None else b""
    if len(data) > limit:
        raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
    return data


class EngineViewSet(viewsets.ViewSet):
    """A ViewSet over the engine. ``rules`` maps every action to what it requires; an action
    missing from the map is a configuration error (fail closed), never an open route."""

    rules: dict = {}
    #: Actions answering raw bodies: their renderers (JSON stays first, for errors).
    raw_renderers: dict = {}

    def get_renderers(self):
        extra = self.raw_renderers.get(getattr(self, "action", None))
        return [JSONRenderer(), extra()] if extra else [JSONRenderer()]

    @property
    def engine(self):
        return get_engine()

    def get_exception_handler(self):
        return task_exception_handler

    def initial(self, request, *args, **kwargs):
        if self.action not in self.rules:
            raise ImproperlyConfigured(f"{type(self).__name__}: no rule for action {self.action}")
        super().initial(request, *args, **kwargs)
