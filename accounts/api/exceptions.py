"""The JSON error shape of the accounts API: ``{"message": "...", "errors": {field: [...]}}``.

``message`` is always there (one readable sentence; for invalid input it names each field);
``errors`` only for invalid input. Headers DRF sets (``WWW-Authenticate`` on 401,
``Retry-After`` on 429) are kept. Installed as the project's ``EXCEPTION_HANDLER``.

A write Redis refused at its ``maxmemory`` (tokens, login limiter, tasks), however deep in the
exception chain, answers 507 :class:`StoreFull` rather than a 500 or a vague 503.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.views import exception_handler

from accounts.services import AccountsError, PermissionRefused
from nmtwizard.exceptions import out_of_memory

__all__ = ["STORE_FULL_MESSAGE", "StoreFull", "message_exception_handler", "no_route"]

STORE_FULL_MESSAGE = (
    "The launcher's Redis is full (it reached its maxmemory): the request was refused and "
    "nothing was stored. Retry once finished tasks are deleted or an administrator raises the "
    "limit."
)


class StoreFull(exceptions.APIException):
    """Redis refused a write at its ``maxmemory`` (``noeviction``): 507 Insufficient Storage."""

    status_code = 507
    default_detail = STORE_FULL_MESSAGE
    default_code = "store_full"


def _flatten(value) -> str:
    if isinstance(value, list | tuple):
        return " ".join(_flatten(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in value.items())
    return str(value)


def message_exception_handler(exc, context):
    """DRF's handler, then reshape the body to ``{"message": …}`` (see the module docstring).

    Refusals of ``accounts.services`` become 403 (a rule of the policy) or 400 (naming the
    field at fault), whichever view called the service. A full Redis is 507.
    """
    if out_of_memory(exc):
        exc = StoreFull()
    elif isinstance(exc, PermissionRefused):
        exc = exceptions.PermissionDenied(exc.message)
    elif isinstance(exc, AccountsError):
        exc = exceptions.ValidationError({exc.field or "non_field_errors": [exc.message]})
    elif isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        exc = exceptions.ValidationError(detail=detail)
    response = exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(exc, exceptions.ValidationError):
        errors = data if isinstance(data, dict) else {"non_field_errors": data}
        response.data = {"message": _flatten(errors), "errors": errors}
    elif isinstance(data, dict) and "detail" in data:
        response.data = {"message": str(data["detail"])}
    else:
        response.data = {"message": _flatten(data)}
    return response


@csrf_exempt  # token-authenticated API: a POST to an unknown path is a 404, not a CSRF page
def no_route(request, *args, **kwargs) -> JsonResponse:
    """A path under an API prefix that matches no route: the API's JSON 404, never an HTML
    page (clients parse every answer as ``{"message": …}``)."""
    return JsonResponse({"message": "no such route"}, status=404)
