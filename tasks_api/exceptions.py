"""The task API's exception handler: engine and domain errors become ``{"message": …}``.

It translates, then delegates to the project's handler
(:func:`accounts.api.exceptions.message_exception_handler`), so the error shape stays one.

=========================================  ======
engine ``NotFound`` (task, pool, config…)  404
engine ``Conflict`` (not stopped, base…)   409
engine ``InvalidRequest``, ``ConfigError``  400
:class:`PayloadTooLarge`, oversize body    413
engine / token store unavailable           503
Redis full (``StoreFull``, any OOM)        507
=========================================  ======
"""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions, status

from accounts.api.exceptions import StoreFull, message_exception_handler
from accounts.authentication import ServiceUnavailable
from accounts.tokens import TokenServiceUnavailable
from nmtwizard.exceptions import (
    ConfigError,
    Conflict,
    EngineUnavailable,
    InvalidRequest,
    NotFound,
    out_of_memory,
)

__all__ = ["EngineConflict", "PayloadTooLarge", "task_exception_handler"]


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "payload_too_large"


class EngineConflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class EngineBadRequest(exceptions.APIException):
    """A 400 whose message is the engine's sentence (no per-field ``errors``)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_request"


def _translate(exc: Exception) -> Exception:
    if out_of_memory(exc):  # before EngineUnavailable, which StoreFull is
        return StoreFull()
    if isinstance(exc, NotFound):
        return exceptions.NotFound(str(exc))
    if isinstance(exc, Conflict):
        return EngineConflict(str(exc))
    if isinstance(exc, InvalidRequest | ConfigError):
        return EngineBadRequest(str(exc))
    if isinstance(exc, EngineUnavailable | TokenServiceUnavailable):
        return ServiceUnavailable("The task store is unavailable; retry shortly.")
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge(str(exc))
    return exc


def task_exception_handler(exc, context):
    """DRF exception handler of the task API (see the module docstring)."""
    return message_exception_handler(_translate(exc), context)
