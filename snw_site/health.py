"""Liveness and version routes: ``GET /status`` and ``GET /version``.

``/status`` checks the two things every request depends on (the database and Redis) and answers
503 when either is down, so a load balancer or ``docker compose`` health check can act on it.
"""

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from nmtwizard.embedded_redis import redis_answers

__all__ = ["status", "version"]


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except DatabaseError:
        return False


def _redis_ok() -> bool:
    return redis_answers(settings.REDIS_URL, settings.REDIS_SOCKET_TIMEOUT)


@require_GET
def status(request):
    checks = {"database": _database_ok(), "redis": _redis_ok()}
    healthy = all(checks.values())
    body = {"status": "ok" if healthy else "unavailable", "version": settings.SNW_VERSION, **checks}
    return JsonResponse(body, status=200 if healthy else 503)


@require_GET
def version(request):
    return JsonResponse({"version": settings.SNW_VERSION})
