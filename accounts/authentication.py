"""DRF authentication: tokens everywhere, passwords only on ``/auth/token``.

:class:`TokenAuthentication` (the project default) accepts a ``_T_``/``_P_`` token as

- ``Authorization: Bearer <token>``, or
- HTTP Basic whose user name is the token, any password (``http://<token>:x@host/…``, the form
  nmt-wizard clients and task containers use).

HTTP Basic with a real user name is refused (401) on every route that uses it: passwords are
checked only by :class:`PasswordBasicAuthentication`, which only ``/auth/token`` uses.

**Restricted tokens** (minted by :func:`accounts.tokens.mint_task_token`) are checked here, at
authentication, so no view can forget it: such a token authenticates only on a *task callback
route* of its own task and gets 403 anywhere else. A view declares itself one with::

    class TaskBeatView(APIView):
        task_callback = True              # or, on a ViewSet, a set of action names: {"beat"}
        task_callback_kwarg = "task_id"   # the URL kwarg holding the task id (the default)

and the URL kwarg must equal the token's task id. Anything undeclared is closed to them.
"""

from __future__ import annotations

import base64
import binascii

from django.contrib.auth import authenticate
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts import ratelimit
from accounts.tokens import (
    PERSISTENT_PREFIX,
    TEMPORARY_PREFIX,
    InvalidToken,
    TokenInfo,
    TokenServiceUnavailable,
    token_authenticate,
)

__all__ = [
    "PasswordBasicAuthentication",
    "ServiceUnavailable",
    "TokenAuthentication",
    "is_task_callback",
    "password_attempt",
]

REALM = "snw"


class ServiceUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = "Authentication is temporarily unavailable; retry shortly."
    default_code = "service_unavailable"


def _basic_credentials(parts: list[bytes]) -> tuple[str, str]:
    """Decode the ``user:password`` of an HTTP Basic header (already split in two)."""
    try:
        decoded = base64.b64decode(parts[1], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise exceptions.AuthenticationFailed("Malformed HTTP Basic credentials.") from None
    username, sep, password = decoded.partition(":")
    if not sep or "\x00" in decoded:  # no database stores a NUL: never look one up
        raise exceptions.AuthenticationFailed("Malformed HTTP Basic credentials.")
    return username, password


def _split_header(request) -> list[bytes] | None:
    parts = get_authorization_header(request).split()
    if not parts:
        return None
    if len(parts) != 2:
        raise exceptions.AuthenticationFailed("Malformed Authorization header.")
    return parts


# =============================================================================
# Task callback routes
# =============================================================================
def is_task_callback(view) -> bool:
    """Whether ``view`` (for its current action) declared itself a task callback route."""
    declared = getattr(view, "task_callback", False)
    if declared is True:
        return True
    if isinstance(declared, set | frozenset | tuple | list):
        return getattr(view, "action", None) in declared
    return False


def _enforce_restriction(request, info: TokenInfo) -> None:
    if info.restriction is None:
        return
    context = getattr(request, "parser_context", None) or {}
    view = context.get("view")
    kwargs = context.get("kwargs") or {}
    if view is None or not is_task_callback(view):
        raise exceptions.PermissionDenied("This token only opens the callback routes of its task.")
    if kwargs.get(getattr(view, "task_callback_kwarg", "task_id")) != info.restriction:
        raise exceptions.PermissionDenied("This token belongs to another task.")


# =============================================================================
# Password checks, rate limited
# =============================================================================
def password_attempt(request, username: str, check, *, too_many: str):
    """Run ``check()``, a password check that answers falsy when it fails, unless ``username``
    is locked out from this client address (429 with ``Retry-After``, before any hashing).

    A failure counts toward the lock-out (:mod:`accounts.ratelimit`), a success clears it;
    Redis unreachable answers 503. Returns what ``check()`` returned.
    """
    address = ratelimit.client_address(request)
    try:
        wait = ratelimit.login_lockout_remaining(username, address)
        if wait:
            raise exceptions.Throttled(wait=wait, detail=too_many)
        result = check()
        if result:
            ratelimit.login_failures_reset(username, address)
        else:
            ratelimit.login_failure_record(username, address)
        return result
    except TokenServiceUnavailable:
        raise ServiceUnavailable() from None


# =============================================================================
# Authentication classes
# =============================================================================
class TokenAuthentication(BaseAuthentication):
    """``Bearer <token>`` or Basic ``<token>:<anything>``; see the module docstring."""

    def authenticate(self, request):
        parts = _split_header(request)
        if parts is None:
            return None
        scheme = parts[0].lower()
        if scheme == b"bearer":
            token = parts[1].decode("latin-1")
        elif scheme == b"basic":
            token, _ = _basic_credentials(parts)
            if not token.startswith((TEMPORARY_PREFIX, PERSISTENT_PREFIX)):
                raise exceptions.AuthenticationFailed(
                    "HTTP Basic with a password is accepted only on /auth/token; send a token."
                )
        else:
            return None  # another scheme: not ours
        try:
            user, info = token_authenticate(token)
        except InvalidToken as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        except TokenServiceUnavailable:
            raise ServiceUnavailable() from None
        _enforce_restriction(request, info)
        return user, info

    def authenticate_header(self, request):
        return f'Bearer realm="{REALM}"'


class PasswordBasicAuthentication(BaseAuthentication):
    """HTTP Basic ``trainer_id:password``, rate limited; for ``/auth/token`` only.

    Failures answer one generic message whether or not the user exists, is inactive or belongs
    to an inactive entity. Too many failures answer 429 with ``Retry-After``
    (:mod:`accounts.ratelimit`), before any password hashing.
    """

    def authenticate(self, request):
        parts = _split_header(request)
        if parts is None or parts[0].lower() != b"basic":
            return None
        username, password = _basic_credentials(parts)

        def active_user():
            user = authenticate(request._request, username=username, password=password)
            return user if user is not None and user.entity.is_active else None

        user = password_attempt(
            request, username, active_user, too_many="Too many failed logins; retry later."
        )
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid credentials.")
        return user, None

    def authenticate_header(self, request):
        return f'Basic realm="{REALM}"'


# =============================================================================
# OpenAPI (drf-spectacular) descriptions of the schemes
# =============================================================================
class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = TokenAuthentication
    name = ["tokenBearer", "tokenBasic"]

    def get_security_requirement(self, auto_schema):
        return [{"tokenBearer": []}, {"tokenBasic": []}]  # either one

    def get_security_definition(self, auto_schema):
        return [
            {"type": "http", "scheme": "bearer", "description": "A _T_ or _P_ token."},
            {
                "type": "http",
                "scheme": "basic",
                "description": "The token as user name, any password.",
            },
        ]


class PasswordBasicAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = PasswordBasicAuthentication
    name = "passwordBasic"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "basic",
            "description": "trainer_id and password (only on /auth/token).",
        }
