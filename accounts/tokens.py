"""API tokens: generation, digests, temporary tokens in Redis, persistent tokens in SQL.

Two kinds of bearer tokens identify a user (DESIGN.md, "Authentication"):

- ``_T_…`` **temporary** tokens live in Redis under a key derived from their digest, with a TTL
  equal to their duration. The stored value (JSON) names the user, the *restriction* (``None``
  or a task id), a stamp of the user's password hash and token epoch, so a password change
  or a deactivation kills them all, and the *session start* (the time of the password login).
  :func:`temporary_token_refresh` trades a valid unrestricted one for a new one with the same
  session start, never valid past ``SNW_TOKEN_MAX_SESSION_AGE`` after it.
- ``_P_…`` **persistent** tokens are rows of :class:`~accounts.models.PersistentToken` (digest,
  owner, name, optional expiry, last use, revocation). A password change revokes them
  (:class:`RevokeTokensOnPasswordChange`).

Both are ``prefix + secrets.token_urlsafe(32)`` (256 random bits). Only ``token_digest(token)``,
a plain SHA-256 hex digest, is ever stored. A keyed HMAC would add nothing for secrets of 256
random bits (there is no dictionary to pre-compute) and would tie every persistent token to
``SECRET_KEY``: rotating the key would silently revoke them all. Raw tokens are returned to the
caller once and never logged.

Authentication (:func:`token_authenticate`) costs one Redis GET and one query loading the user
with its entity (temporary), or one indexed SQL lookup joining the token, its owner and the
owner's entity (persistent); both queries are compiled once (:mod:`accounts.rowload`). No
password hashing.

Every Redis key of this module (and of :mod:`accounts.ratelimit`) is built by :class:`AuthKeys`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django_redis import get_redis_connection

from accounts.constants import Action
from accounts.models import PersistentToken, User
from accounts.rowload import JoinedLoader

__all__ = [
    "PERSISTENT_PREFIX",
    "TEMPORARY_PREFIX",
    "AuthKeys",
    "InvalidToken",
    "IssuedToken",
    "RevokeTokensOnPasswordChange",
    "TokenInfo",
    "TokenNotRefreshable",
    "TokenServiceUnavailable",
    "auth_stamp",
    "generate_token",
    "mint_task_token",
    "persistent_token_create",
    "persistent_token_list",
    "persistent_token_revoke",
    "persistent_tokens_revoke_for_user",
    "revoke_task_token",
    "temporary_token_create",
    "temporary_token_refresh",
    "temporary_token_revoke",
    "token_authenticate",
    "token_digest",
    "token_kind",
    "token_revoke",
    "tokens_revoke_for_users",
]

logger = logging.getLogger(__name__)

TEMPORARY_PREFIX = "_T_"
PERSISTENT_PREFIX = "_P_"
#: 32 bytes = 256 bits of randomness, 43 url-safe base64 characters.
SECRET_BYTES = 32
_TOKEN_RE = re.compile(r"^(_T_|_P_)[A-Za-z0-9_-]{43}\Z")
_TASK_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}\Z")
_STAMP_SALT = "accounts.tokens.auth_stamp"

TokenKind = Literal["temporary", "persistent"]

# What every authenticated request loads, one precompiled SELECT each (accounts.rowload).
_USER_WITH_ENTITY = JoinedLoader(User, "entity", by="pk")
_TOKEN_WITH_OWNER = JoinedLoader(PersistentToken, "owner", "entity", by="digest")


class InvalidToken(Exception):
    """The presented token is malformed, unknown, expired, revoked, or its user cannot log in."""


class TokenNotRefreshable(Exception):
    """A valid token that cannot buy a new one: persistent, task-restricted, from a session
    older than ``SNW_TOKEN_MAX_SESSION_AGE``, or issued before sessions were recorded."""


class TokenServiceUnavailable(Exception):
    """Redis, where temporary tokens live, cannot be reached."""


# =============================================================================
# Redis keys (the only place that names them)
# =============================================================================
class AuthKeys:
    """Names of the Redis keys of authentication. Nothing else builds them."""

    NAMESPACE = "snw:auth"

    @classmethod
    def temporary(cls, digest: str) -> str:
        """Value: JSON ``{"user": id, "task": task id or null, "stamp": auth stamp,
        "session": epoch seconds of the login}``."""
        return f"{cls.NAMESPACE}:token:{digest}"

    @classmethod
    def task_tokens(cls, task_id: str) -> str:
        """Set of the digests of the restricted tokens minted for one task."""
        return f"{cls.NAMESPACE}:task-tokens:{task_id}"

    @classmethod
    def login_failures(cls, username: str, address: str) -> str:
        """Counter of failed logins for (user name, client address); hashed to bound its size."""
        ident = hashlib.sha256(f"{username.lower()}\0{address}".encode()).hexdigest()[:32]
        return f"{cls.NAMESPACE}:login-failures:{ident}"


def _redis():
    return get_redis_connection("default")


# =============================================================================
# Generation and digests
# =============================================================================
def generate_token(prefix: str) -> str:
    """A new raw token: ``prefix`` + 256 random bits, url-safe."""
    if prefix not in (TEMPORARY_PREFIX, PERSISTENT_PREFIX):
        raise ValueError(f"unknown token prefix {prefix!r}")
    return prefix + secrets.token_urlsafe(SECRET_BYTES)


def token_digest(token: str) -> str:
    """SHA-256 hex digest of a raw token: what Redis and SQL store (64 characters)."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_kind(token: str) -> TokenKind | None:
    """``"temporary"``, ``"persistent"``, or ``None`` when ``token`` is not a well-formed token."""
    match = _TOKEN_RE.match(token)
    if match is None:
        return None
    return "temporary" if match.group(1) == TEMPORARY_PREFIX else "persistent"


def auth_stamp(user) -> str:
    """A digest of the user's password hash and token epoch: changes (and kills tokens) when
    the password does, or when a deactivation raises the epoch.

    Same idea as Django's ``get_session_auth_hash``, with our own salt; an HMAC, not a password
    hash, so checking it on every request costs microseconds.
    """
    # Epoch 0 stamps the password alone, as before epochs existed: an upgrade kills no token.
    value = f"{user.password}\0{user.token_epoch}" if user.token_epoch else user.password
    return salted_hmac(_STAMP_SALT, value, algorithm="sha256").hexdigest()


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What ``request.auth`` holds after token authentication. Never the raw token."""

    kind: TokenKind
    digest: str
    restriction: str | None = None
    persistent_id: int | None = None
    #: Temporary tokens: epoch seconds of the password login their session started with.
    session_start: float | None = None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token just created: the only moment the raw value exists on the server."""

    token: str
    duration: int | None
    digest: str


# =============================================================================
# Temporary tokens (Redis)
# =============================================================================
def _positive_duration(duration: int) -> int:
    if isinstance(duration, bool) or not isinstance(duration, int) or duration <= 0:
        raise ValueError(f"duration must be a positive number of seconds, got {duration!r}")
    return duration


_MINT_TASK_LUA = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
if redis.call('TTL', KEYS[2]) < tonumber(ARGV[2]) then
    redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return 1
"""


def temporary_token_create(
    *,
    user,
    duration: int | None = None,
    task_id: str | None = None,
    session_start: float | None = None,
):
    """Store a new ``_T_`` token for ``user`` valid ``duration`` seconds; return the raw token.

    ``task_id`` restricts the token to that task's callback routes (see
    :mod:`accounts.authentication`). The Redis value holds only the user id, the restriction,
    the password stamp and the session start (now, unless a refresh carries one over).
    """
    duration = _positive_duration(settings.SNW_TOKEN_DURATION if duration is None else duration)
    token = generate_token(TEMPORARY_PREFIX)
    digest = token_digest(token)
    session = int(time.time()) if session_start is None else int(session_start)
    record = {"user": user.pk, "task": task_id, "stamp": auth_stamp(user), "session": session}
    value = json.dumps(record)
    try:
        client = _redis()
        if task_id is None:
            client.set(AuthKeys.temporary(digest), value, ex=duration)
        else:
            # One script: the token, its task index, and an index TTL never shorter than the
            # longest token it lists (EXPIRE GT needs Redis 7; the embedded server is 6.2).
            client.eval(
                _MINT_TASK_LUA,
                2,
                AuthKeys.temporary(digest),
                AuthKeys.task_tokens(task_id),
                value,
                duration,
                digest,
            )
    except redis.RedisError as exc:
        raise TokenServiceUnavailable("token store unavailable") from exc
    return IssuedToken(token=token, duration=duration, digest=digest)


def temporary_token_revoke(digest: str) -> bool:
    """Delete a temporary token by digest; ``True`` when it existed."""
    try:
        return bool(_redis().delete(AuthKeys.temporary(digest)))
    except redis.RedisError as exc:
        raise TokenServiceUnavailable("token store unavailable") from exc


def _load_user(user_id):
    user = _USER_WITH_ENTITY.get(user_id)
    if user is None or not user.is_active or not user.entity.is_active:
        raise InvalidToken("Invalid or expired token.")
    return user


def _temporary_authenticate(digest: str):
    try:
        raw = _redis().get(AuthKeys.temporary(digest))
    except redis.RedisError as exc:
        raise TokenServiceUnavailable("token store unavailable") from exc
    if raw is None:
        raise InvalidToken("Invalid or expired token.")
    try:
        record = json.loads(raw)
        user_id, task_id, stamp = record["user"], record["task"], record["stamp"]
    except (ValueError, KeyError, TypeError):
        logger.error("temporary token record %s… is corrupt; refusing it", digest[:8])
        raise InvalidToken("Invalid or expired token.") from None
    user = _load_user(user_id)
    if not hmac.compare_digest(str(stamp), auth_stamp(user)):
        raise InvalidToken("Invalid or expired token.")
    session = record.get("session")
    if isinstance(session, bool) or not isinstance(session, int | float):
        session = None  # a token of a version that did not record sessions
    return user, TokenInfo(
        kind="temporary", digest=digest, restriction=task_id, session_start=session
    )


def temporary_token_refresh(*, user, info: TokenInfo, duration: int | None = None):
    """A new ``_T_`` token for the session ``info`` (an authenticated temporary token) belongs
    to: same user, same session start, valid ``duration`` seconds (default
    ``SNW_TOKEN_DURATION``) but never past ``session start + SNW_TOKEN_MAX_SESSION_AGE``.

    The presented token stays valid until its own expiry (two ``snw`` processes sharing a saved
    token may both refresh). Raises :class:`TokenNotRefreshable` for a persistent or
    task-restricted token, a session at its age limit, or refresh disabled (age 0).
    """
    max_age = settings.SNW_TOKEN_MAX_SESSION_AGE
    if info.kind != "temporary":
        raise TokenNotRefreshable("Only temporary (_T_) tokens can be refreshed.")
    if info.restriction is not None:
        raise TokenNotRefreshable("A task token cannot be refreshed.")
    if max_age <= 0:
        raise TokenNotRefreshable("Token refresh is disabled on this server; log in again.")
    if info.session_start is None:
        raise TokenNotRefreshable("This token predates session tracking; log in again.")
    remaining = int(info.session_start + max_age - time.time())
    if remaining < 1:
        raise TokenNotRefreshable(
            f"The session is older than the {max_age}s the server allows; log in again."
        )
    duration = settings.SNW_TOKEN_DURATION if duration is None else duration
    return temporary_token_create(
        user=user, duration=min(duration, remaining), session_start=info.session_start
    )


# =============================================================================
# Task tokens: restricted temporary tokens, for the engine
# =============================================================================
def mint_task_token(task_id: str, owner, *, duration: int | None = None) -> str:
    """A ``_T_`` token of ``owner`` that opens only the callback routes of ``task_id``.

    ``owner`` is a user instance, a trainer id, or the engine's owner mapping (with a
    ``"trainer_id"`` key), so this function is directly the engine's ``minter`` hook
    (``NMTWIZARD_TOKEN_MINTER=accounts.tokens:mint_task_token``). The worker hands the token to
    the task (``http://<token>:x@launcher/task/beat/<task_id>``) and calls
    :func:`revoke_task_token` (the ``revoker`` hook) when the task stops. ``duration`` defaults
    to ``SNW_TASK_TOKEN_DURATION``.
    """
    if not isinstance(task_id, str) or not _TASK_ID_RE.match(task_id):
        raise ValueError(f"invalid task id {task_id!r}")
    if isinstance(owner, Mapping):
        owner = owner["trainer_id"]
    if isinstance(owner, str):
        owner = get_user_model().objects.get_by_natural_key(owner)
    if duration is None:
        duration = settings.SNW_TASK_TOKEN_DURATION
    return temporary_token_create(user=owner, duration=duration, task_id=task_id).token


def revoke_task_token(task_id: str) -> int:
    """Revoke every token minted for ``task_id`` (atomically); return how many were live."""
    index = AuthKeys.task_tokens(task_id)

    def _revoke(pipe):
        digests = [d.decode() if isinstance(d, bytes) else d for d in pipe.smembers(index)]
        pipe.multi()
        for digest in digests:
            pipe.delete(AuthKeys.temporary(digest))
        pipe.delete(index)

    try:
        # WATCH the index: a token minted between the read and the deletes forces a retry.
        results = _redis().transaction(_revoke, index)
    except redis.RedisError as exc:
        raise TokenServiceUnavailable("token store unavailable") from exc
    return sum(int(r) for r in results[:-1])


# =============================================================================
# Persistent tokens (SQL)
# =============================================================================
def _persistent_authenticate(digest: str):
    row = _TOKEN_WITH_OWNER.get(digest)
    if row is None:
        raise InvalidToken("Invalid or expired token.")
    now = timezone.now()
    if row.revoked_at is not None:
        raise InvalidToken("Invalid or expired token.")
    if row.expires_at is not None and row.expires_at <= now:
        raise InvalidToken("Invalid or expired token.")
    user = row.owner
    if not user.is_active or not user.entity.is_active:
        raise InvalidToken("Invalid or expired token.")
    touch = settings.SNW_PERSISTENT_TOKEN_TOUCH_INTERVAL
    if row.last_used_at is None or now - row.last_used_at >= timedelta(seconds=touch):
        # At most one write per token per interval; a plain UPDATE, no read-modify-write.
        PersistentToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return user, TokenInfo(kind="persistent", digest=digest, persistent_id=row.pk)


def persistent_token_create(*, actor, name: str, expires_at: datetime | None = None):
    """Create a ``_P_`` token owned by ``actor``; return ``(row, raw token)``.

    The raw token is returned once, here; only its digest is saved. Raises Django's
    ``ValidationError`` (naming the field) for a duplicate active name or a past expiry.
    """
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "must be in the future"})
    duplicate = ValidationError({"name": f"you already have an active token named {name!r}"})
    if PersistentToken.objects.filter(owner=actor, name=name, revoked_at__isnull=True).exists():
        raise duplicate
    token = generate_token(PERSISTENT_PREFIX)
    row = PersistentToken(owner=actor, name=name, digest=token_digest(token), expires_at=expires_at)
    row.full_clean(exclude=["digest"], validate_constraints=False)
    try:
        with transaction.atomic():
            row.save()
            _audit(actor=actor, row=row, action="persistent_token.create", after=_audit_state(row))
    except IntegrityError:  # a concurrent creation won the race past the check above
        raise duplicate from None
    logger.info("persistent token %s created by %s", row.pk, actor)
    return row, token


def persistent_token_revoke(*, actor, token: PersistentToken) -> PersistentToken:
    """Revoke ``token`` (idempotent). The caller has checked that ``actor`` sees it; revoking
    another user's token also needs to hold everything that user holds (an entity
    administrator does not cut off a super administrator's scripts)."""
    from accounts.services import require_covers  # late: services import the policy

    if token.owner_id != actor.pk:
        require_covers(actor, token.owner, f"revoke the tokens of {token.owner}")
    if token.revoked_at is None:
        before = _audit_state(token)
        token.revoked_at = timezone.now()
        with transaction.atomic():
            PersistentToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
                revoked_at=token.revoked_at
            )
            _audit(
                actor=actor,
                row=token,
                action="persistent_token.revoke",
                before=before,
                after=_audit_state(token),
            )
        logger.info("persistent token %s of %s revoked by %s", token.pk, token.owner_id, actor)
    return token


def _revoke_active(**lookup) -> int:
    """Revoke now the persistent tokens matching ``lookup`` that are not revoked yet (one
    UPDATE); return how many."""
    return PersistentToken.objects.filter(revoked_at__isnull=True, **lookup).update(
        revoked_at=timezone.now()
    )


def persistent_tokens_revoke_for_user(user) -> int:
    """Revoke every active persistent token of ``user``; return how many."""
    if user.pk is None:
        return 0
    return _revoke_active(owner=user)


def tokens_revoke_for_users(users: QuerySet) -> None:
    """Kill every token of ``users`` for good (a deactivation): their persistent tokens are
    revoked and their token epoch raised, which no temporary token issued before matches."""
    _revoke_active(owner__in=users)
    users.update(token_epoch=F("token_epoch") + 1)


def persistent_token_list(*, actor) -> QuerySet[PersistentToken]:
    """Tokens ``actor`` may see and revoke: their own, and those of the users ``actor`` may
    change per :func:`accounts.policy.users_for` (administrators of the owner's entity)."""
    from accounts.policy import users_for  # late: the policy loads every accounts model

    scope = Q(owner=actor) | Q(owner__in=users_for(actor, Action.CHANGE))
    return PersistentToken.objects.select_related("owner__entity").filter(scope)


def _audit(*, actor, row: PersistentToken, action: str, before=None, after=None) -> None:
    from accounts.services import audit_record  # late: services import the policy

    audit_record(
        actor=actor,
        entity=row.owner.entity,
        action=action,
        object_type="PersistentToken",
        object_id=str(row.pk),
        object_repr=str(row),
        before=before,
        after=after,
    )


def _audit_state(row: PersistentToken) -> dict:
    return {
        "name": row.name,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }


class RevokeTokensOnPasswordChange:
    """Password "validator" whose ``password_changed`` hook revokes the persistent tokens.

    Django calls ``password_changed`` on every configured validator when a user saved after
    ``set_password`` (public API, see ``django.contrib.auth.password_validation``). Temporary
    tokens need no hook: their stamp (:func:`auth_stamp`) no longer matches.
    """

    def validate(self, password, user=None):
        return None

    def password_changed(self, password, user=None):
        if user is not None:
            persistent_tokens_revoke_for_user(user)

    def get_help_text(self):
        return ""


# =============================================================================
# Authentication and revocation of a presented token
# =============================================================================
def token_authenticate(token: str):
    """Resolve a raw token to ``(user, TokenInfo)`` or raise :class:`InvalidToken`.

    Refuses malformed, unknown, expired and revoked tokens, tokens whose password stamp is
    stale, and tokens of an inactive user or entity.
    """
    kind = token_kind(token)
    if kind is None:
        raise InvalidToken("Malformed token.")
    digest = token_digest(token)
    if kind == "temporary":
        return _temporary_authenticate(digest)
    return _persistent_authenticate(digest)


def token_revoke(info: TokenInfo) -> None:
    """Revoke the token ``request.auth`` describes (``POST /auth/logout``)."""
    if info.kind == "temporary":
        temporary_token_revoke(info.digest)
    else:
        _revoke_active(digest=info.digest)
