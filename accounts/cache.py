"""The ability cache: one Redis round trip per request, never a stale ability.

Design (see also ``accounts.policy``):

* One **generation token** (``ABILITY_GENERATION_KEY``, a random string, no TTL) stands for
  "the state of every user, group, membership, role, grant, share and entity". Any change to
  those rows replaces it (``invalidate()``, called by the signal handlers in
  ``accounts.signals``). Account changes are rare, so invalidating everyone is cheap and leaves
  no dependency to get wrong.
* Each user's abilities are stored under ``ABILITY_USER_KEY`` as ``(generation, abilities)``.
* A read is **one MGET** of both keys: the entry counts only if its generation equals the
  current one. No Lua, no second round trip; a miss recomputes from SQL and stores the result
  tagged with the generation read *before* the computation, so an entry computed from data that
  changed meanwhile is born stale and never served.
* A random token rather than a counter: if Redis loses the key (eviction, flush) a new token can
  never collide with an old entry's tag.
* Transactions: ``invalidate()`` replaces the token at once (so this transaction does not read
  entries computed before its own change) **and** again on commit (so entries other processes
  computed from the old committed rows meanwhile are dropped). While the current transaction
  holds uncommitted ability changes, results are computed from SQL and never stored, so a
  rolled-back change cannot leave an entry behind.
* Within one request the result is memoised (``request_scope()``, installed by
  ``AbilityCacheMiddleware``), so several ``can()`` calls still cost one MGET. Any invalidation
  clears the memo.
* Redis down: abilities are computed from SQL (slower, still correct) and a warning is logged.
"""

import logging
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.core.cache import caches
from django.db import connection, transaction

from accounts.constants import ABILITY_CACHE_TIMEOUT, ABILITY_GENERATION_KEY, ABILITY_USER_KEY

__all__ = [
    "AbilityCacheMiddleware",
    "cached_abilities",
    "has_pending_changes",
    "invalidate",
    "request_scope",
]

logger = logging.getLogger(__name__)

Abilities = frozenset[tuple[str, str]]

_request_memo: ContextVar[dict[int, Abilities] | None] = ContextVar(
    "snw_ability_memo", default=None
)


def _cache():
    return caches["default"]


def _new_generation() -> None:
    memo = _request_memo.get()
    if memo is not None:
        memo.clear()
    try:
        _cache().set(ABILITY_GENERATION_KEY, secrets.token_hex(8), timeout=None)
    except Exception:
        # Entries expire (ABILITY_CACHE_TIMEOUT); reads also fall back to SQL while Redis is
        # unreachable. Logged loudly: a lost invalidation is a security event.
        logger.exception("ability cache: cannot replace the generation token")


def invalidate() -> None:
    """Forget every cached ability, now and again when the current transaction commits."""
    _new_generation()
    if connection.in_atomic_block:
        transaction.on_commit(_new_generation)


def has_pending_changes() -> bool:
    """True while the current transaction holds uncommitted changes that affect abilities.

    Django drops on-commit callbacks of rolled-back (savepoint) blocks, so the presence of ours
    is exactly "this transaction changed abilities and has not committed yet".
    """
    return connection.in_atomic_block and any(
        callback is _new_generation for _, callback, _ in connection.run_on_commit
    )


def cached_abilities(user_id: int, compute: Callable[[], Abilities]) -> Abilities:
    """Return the abilities of ``user_id`` from the memo, Redis, or ``compute()``."""
    memo = _request_memo.get()
    if memo is not None and user_id in memo:
        return memo[user_id]
    if has_pending_changes():
        return compute()

    cache = _cache()
    user_key = ABILITY_USER_KEY.format(user_id=user_id)
    try:
        generation, entry = _mget(cache, ABILITY_GENERATION_KEY, user_key)
    except Exception:
        logger.warning("ability cache unreachable; computing abilities from the database")
        return compute()

    if generation is not None and entry is not None and entry[0] == generation:
        result = frozenset((perm, code) for perm, code in entry[1])
    else:
        if generation is None:
            generation = _install_generation(cache)
        result = compute()
        if generation is not None:
            try:
                # JSON (the cache's serializer): stored data is never unpickled.
                entry = [generation, sorted(result)]
                cache.set(user_key, entry, timeout=ABILITY_CACHE_TIMEOUT)
            except Exception:
                logger.warning("ability cache unreachable; abilities not stored")
    if memo is not None:
        memo[user_id] = result
    return result


def _mget(cache, *keys: str) -> list:
    """One MGET on django-redis's own client and codec (``get_many`` costs ~0.1 ms more in
    key bookkeeping, half the budget of a cached read)."""
    client = cache.client
    raw = client.get_client(write=False).mget([client.make_key(key) for key in keys])
    return [None if value is None else client.decode(value) for value in raw]


def _install_generation(cache) -> str | None:
    """First use (or Redis lost the token): install one, keeping a concurrent writer's."""
    token = secrets.token_hex(8)
    try:
        if cache.add(ABILITY_GENERATION_KEY, token, timeout=None):
            return token
        return cache.get(ABILITY_GENERATION_KEY)
    except Exception:
        return None


@contextmanager
def request_scope() -> Iterator[None]:
    """Memoise abilities for the duration of one request (or one command)."""
    token = _request_memo.set({})
    try:
        yield
    finally:
        _request_memo.reset(token)


class AbilityCacheMiddleware:
    """Gives each request its own ability memo: at most one Redis read per user per request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with request_scope():
            return self.get_response(request)
