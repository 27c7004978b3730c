"""Failed-login limiting for ``/auth/token``: an atomic Redis counter per (user name, address).

After ``SNW_LOGIN_MAX_FAILURES`` failed logins for one user name from one client address within
``SNW_LOGIN_FAILURE_WINDOW`` seconds, that pair is refused (429 with ``Retry-After``) until the
window, opened by the first failure, ends. Refused attempts are not counted and do not extend
the window, so a lock-out always ends; and since the key includes the client address, an
attacker who locks a name out from their address does not lock the real user out from theirs.
No password is hashed while locked out.

The client address is DRF's throttling identity (``REMOTE_ADDR``, or ``X-Forwarded-For`` as
trusted through ``REST_FRAMEWORK["NUM_PROXIES"]``).
"""

from __future__ import annotations

import redis
from django.conf import settings
from django_redis import get_redis_connection
from rest_framework.throttling import BaseThrottle

from accounts.tokens import AuthKeys, TokenServiceUnavailable

__all__ = [
    "client_address",
    "login_failure_record",
    "login_failures_reset",
    "login_lockout_remaining",
]


def client_address(request) -> str:
    """The client address of a DRF request, as DRF's throttles see it."""
    return BaseThrottle().get_ident(request) or "unknown"


def login_lockout_remaining(username: str, address: str) -> int:
    """Seconds until ``username`` may try again from ``address``; 0 when not locked out."""
    key = AuthKeys.login_failures(username, address)
    try:
        with get_redis_connection("default").pipeline(transaction=False) as pipe:
            count, ttl = pipe.get(key).ttl(key).execute()
    except redis.RedisError as exc:
        raise TokenServiceUnavailable("login limiter unavailable") from exc
    if count is None or int(count) < settings.SNW_LOGIN_MAX_FAILURES:
        return 0
    # ttl is -2 when the key vanished between the two reads; at least 1 second is honest.
    return max(int(ttl), 1)


def login_failure_record(username: str, address: str) -> int:
    """Count one failed login; return the count in the current window.

    ``SET NX EX`` opens the window on the first failure and ``INCR`` counts, in one MULTI, so
    concurrent failures neither lose counts nor leave a counter without expiry.
    """
    key = AuthKeys.login_failures(username, address)
    try:
        with get_redis_connection("default").pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=settings.SNW_LOGIN_FAILURE_WINDOW, nx=True)
            pipe.incr(key)
            _, count = pipe.execute()
    except redis.RedisError as exc:
        raise TokenServiceUnavailable("login limiter unavailable") from exc
    return int(count)


def login_failures_reset(username: str, address: str) -> None:
    """Forget the failures of (``username``, ``address``) after a successful login."""
    try:
        get_redis_connection("default").delete(AuthKeys.login_failures(username, address))
    except redis.RedisError as exc:
        raise TokenServiceUnavailable("login limiter unavailable") from exc
