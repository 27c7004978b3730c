"""Task and pool scoping: the adapter between engine objects and :mod:`accounts.policy`.

The engine stores an opaque owner entity and user on every task and knows nothing of
permissions; this module is the one place that turns "this user, this task or pool, this
action" into an answer, and it asks ``accounts.policy`` (``can``, ``entity_codes_with``,
``is_admin``) for every ability. Disclosure rule: what the user may not see answers 404 with
the same message as a missing object; what they may see but not change answers 403.

* A pool belongs to the entities its active configuration lists (``entities``), else to the
  entity of its name's first two letters, upper-cased.
* A task belongs to the entity stored on it at launch (``entity``) and to its launcher
  (``user``, a trainer id).
"""

from __future__ import annotations

import logging

from rest_framework import exceptions

from accounts import policy
from accounts.constants import Perm
from accounts.tokens import TokenServiceUnavailable, revoke_task_token
from nmtwizard.api import Engine
from nmtwizard.exceptions import PoolNotFound, TaskNotFound
from nmtwizard.task import TaskStatus
from tasks_api.constants import PoolRule, TaskRule

__all__ = [
    "base_config_access",
    "check_config_entities",
    "launch_entity",
    "pool_access",
    "pool_entities",
    "pool_listed",
    "sent_by_the_task",
    "task_access",
    "task_read_scope",
    "visible_pools",
]

log = logging.getLogger(__name__)

_POOL_VIEW_PERMS = (Perm.TRAIN, Perm.EDIT_CONFIG, Perm.STOP_CONFIG)


def _not_found_pool(pool: str) -> exceptions.NotFound:
    return exceptions.NotFound(f"unknown pool {pool!r}")


def _not_found_task(task_id: str) -> exceptions.NotFound:
    return exceptions.NotFound(f"task {task_id} does not exist")


# =============================================================================
# Pools
# =============================================================================
def pool_entities(engine: Engine, pool: str) -> frozenset[str]:
    """The entity codes owning ``pool`` (PoolNotFound when it does not exist)."""
    return _owning_entities(pool, engine.pool_entities(pool))


def _owning_entities(pool: str, listed) -> frozenset[str]:
    """A configuration's ``entities``, else the entity named by the pool's first two letters."""
    if isinstance(listed, dict | list) and listed:
        return frozenset(str(code).upper() for code in listed)
    return frozenset({pool[:2].upper()})


def _pool_allows(user, rule: PoolRule, entities: frozenset[str]) -> bool:
    if policy.is_admin(user):
        return True
    if rule is PoolRule.VIEW:
        return any(policy.can(user, p, e) for p in _POOL_VIEW_PERMS for e in entities)
    if rule is PoolRule.LAUNCH:
        return any(policy.can(user, Perm.TRAIN, e) for e in entities)
    perm = {PoolRule.EDIT_CONFIG: Perm.EDIT_CONFIG, PoolRule.STOP_CONFIG: Perm.STOP_CONFIG}[rule]
    return all(policy.can(user, perm, e) for e in entities)


def pool_access(user, engine: Engine, pool: str, rule: PoolRule) -> frozenset[str]:
    """Check ``rule`` on ``pool`` for ``user``; return the pool's entities.

    Unknown or invisible pool: 404 (one message); visible but not allowed: 403.
    """
    try:
        entities = pool_entities(engine, pool)
    except PoolNotFound:
        raise _not_found_pool(pool) from None
    if not _pool_allows(user, PoolRule.VIEW, entities):
        raise _not_found_pool(pool)
    if rule is not PoolRule.VIEW and not _pool_allows(user, rule, entities):
        raise exceptions.PermissionDenied(
            f"insufficient credentials for {rule.value} on pool {pool!r} "
            f"(entity {', '.join(sorted(entities))})"
        )
    return entities


def check_config_entities(user, pool: str, config: dict) -> frozenset[str]:
    """A pool configuration may only hand the pool to entities the editor holds
    ``edit_config`` on: otherwise a pool administrator of B could attract A's tasks (and their
    files and tokens) to hosts and callbacks B chose. A configuration listing no entities
    hands the pool to the one its name starts with, so that one is checked then. 403 naming
    the entities; otherwise the entities ``config`` hands the pool to."""
    listed = config.get("entities") if isinstance(config, dict) else None
    codes = sorted(_owning_entities(pool, listed))
    refused = [c for c in codes if not _pool_allows(user, PoolRule.EDIT_CONFIG, frozenset({c}))]
    if refused:
        raise exceptions.PermissionDenied(
            f"entities: you need edit_config on {', '.join(refused)} to give them this pool"
        )
    return frozenset(codes)


def base_config_access(user) -> None:
    """The shared base configuration (every pool merges over it) is for super administrators
    (``admin``); 403 otherwise, as it exists for everyone."""
    if not policy.is_admin(user):
        raise exceptions.PermissionDenied(
            "insufficient credentials: the base configuration is for super administrators"
        )


def visible_pools(user, engine: Engine, pools: list[dict]) -> list[dict]:
    """The pool descriptions (``engine.list_pools()``) ``user`` may use or administer."""
    if policy.is_admin(user):
        return pools
    return [p for p in pools if _pool_allows(user, PoolRule.VIEW, pool_entities(engine, p["name"]))]


def pool_listed(user, entities: frozenset[str], *, every_pool: bool) -> bool:
    """Whether ``service/list`` shows a pool of ``entities`` that ``user`` may see
    (:func:`visible_pools`): as in nmt-wizard, only the pools serving the user's own entity,
    unless ``every_pool`` (``?all``) asks for all of them."""
    return every_pool or user.entity.entity_code in entities


def launch_entity(user, entities: frozenset[str], requested: str | None) -> str:
    """The owner entity of a launch on a pool of ``entities``.

    ``requested`` (nmt-wizard's ``entity_owner``) must be one of them with ``train``;
    otherwise the single pool entity the user trains for, preferring their own entity.
    """
    trained = sorted(e for e in entities if policy.can(user, Perm.TRAIN, e))
    if requested:
        code = requested.upper()
        if code not in entities:
            raise exceptions.ValidationError(
                {"entity_owner": f"the pool does not serve entity {code}"}
            )
        if code not in trained:
            raise exceptions.PermissionDenied(f"you are not a trainer of {code}")
        return code
    if len(trained) == 1:
        return trained[0]
    own = user.entity.entity_code
    if own in trained:
        return own
    if not trained:  # admin on a pool of a not-yet-created entity
        if len(entities) == 1:
            return next(iter(entities))
        trained = sorted(entities)
    raise exceptions.ValidationError(
        {"entity_owner": f"model owner is ambiguous between {', '.join(trained)}; choose one"}
    )


# =============================================================================
# Tasks
# =============================================================================
def task_read_scope(user) -> frozenset[str] | None:
    """Entities whose tasks ``user`` may read; None means every entity (``admin``)."""
    if policy.is_admin(user):
        return None
    return policy.entity_codes_with(user, Perm.USER) | policy.entity_codes_with(user, Perm.TRAIN)


def _restricted_to(request) -> str | None:
    return getattr(request.auth, "restriction", None)


def sent_by_the_task(request, task_id: str) -> bool:
    """The request carries ``task_id``'s own callback token: the task reporting on itself."""
    return _restricted_to(request) == task_id


def _allowed(user, task: dict, rule: TaskRule, own_token: bool) -> bool:
    entity = task.get("entity") or ""
    own = task.get("user") == getattr(user, "trainer_id", None)
    if policy.is_admin(user):
        return True
    if rule is TaskRule.READ:
        return policy.can(user, Perm.USER, entity) or policy.can(user, Perm.TRAIN, entity)
    if rule is TaskRule.READ_OR_CALLBACK:
        return _allowed(user, task, TaskRule.READ, own_token) or _allowed(
            user, task, TaskRule.CALLBACK, own_token
        )
    if rule is TaskRule.CALLBACK:
        return own_token or own or policy.can(user, Perm.TERMINATE, entity)
    if rule in (TaskRule.STOP, TaskRule.DELETE):
        if rule is TaskRule.STOP and own_token:
            return True  # the task reporting its own end (?phase=completed|error)
        if policy.can(user, Perm.TERMINATE, entity):
            return True
        return own and (
            policy.can(user, Perm.TRAIN, entity) or policy.can(user, Perm.TERMINATE_SELF, entity)
        )
    raise ValueError(f"unknown task rule {rule!r}")


def task_access(request, engine: Engine, task_id: str, rule: TaskRule) -> dict:
    """The task ``task_id`` if ``request.user`` may do ``rule`` on it; 404 or 403 otherwise.

    A task-restricted token (the authentication layer already checked that it names this
    task and this route) stops working when its task is stopped: the worker that stops a
    task cannot reach Django to revoke the token, so the token is refused (401) here and
    revoked on the spot.
    """
    try:
        task = engine.get_task(task_id, with_files=False)
    except TaskNotFound:
        raise _not_found_task(task_id) from None
    own_token = _restricted_to(request) == task_id
    if own_token and task.get("status") == TaskStatus.STOPPED:
        try:
            revoke_task_token(task_id)
        except TokenServiceUnavailable:
            log.warning("could not revoke the tokens of stopped task %s", task_id)
        raise exceptions.AuthenticationFailed(f"task {task_id} is stopped: its token is void")
    user = request.user
    if _allowed(user, task, rule, own_token):
        return task
    if own_token or _allowed(user, task, TaskRule.READ, False):
        raise exceptions.PermissionDenied(f"insufficient credentials for task {task_id}")
    raise _not_found_task(task_id)
