"""Writes of the task API: launching, stopping and deleting tasks, and replacing pool
configurations, through the engine.

Views parse input, call one of these, and serialize; the permission decision has been taken
(``tasks_api.scoping``) before they run. Entity and trainer id come from the authenticated
user, never from the request body. Each call writes an audit row under the task's entity
(``task.launch``, ``task.terminate``, ``task.delete``), under each entity of the pool
(``pool.config_set``, ``pool.config_select``, ``pool.config_delete``,
``pool.config_replace``) or under the super entity (``pool.base_config_replace``), after the
engine acted: a failed engine call leaves no row, a failed row write is logged and does not
fail the call, and the row never holds the command, options, files or configuration text (they
may carry secrets).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction

from accounts.services import audit_record
from nmtwizard.api import Engine
from tasks_api.constants import POSTED_CONFIG

__all__ = [
    "base_config_replace",
    "pool_config_delete",
    "pool_config_replace",
    "pool_config_select",
    "pool_config_set",
    "task_delete",
    "task_launch",
    "task_terminate",
]

log = logging.getLogger(__name__)


def task_launch(
    *,
    actor,
    engine: Engine,
    pool: str,
    entity: str,
    content: dict[str, Any],
    files: dict[str, bytes],
    visible_entities: frozenset[str] | None = None,
) -> list[dict[str, Any]]:
    """Create the tasks (a chain: :mod:`nmtwizard.chains`) of a validated ``content``; return
    them in order with their answer-line ``type``, ``ngpus`` and ``ncpus``.

    The task id's trainer prefix is ``actor.trainer_id`` whatever ``content`` says, and the
    task's owner entity is ``entity`` (resolved by :func:`tasks_api.scoping.launch_entity`).
    A ``-m`` model waits for its task only when that task's entity is in ``visible_entities``
    (:func:`tasks_api.scoping.task_read_scope`; None: any).
    """
    docker = content["docker"]
    planned = engine.launch_chain(
        pool=pool,
        trainer_id=actor.trainer_id,
        entity=entity,
        user=actor.trainer_id,
        image=docker["image"],
        tag=docker["tag"],
        command=list(docker["command"]),
        registry=docker.get("registry") or "auto",
        ngpus=content["ngpus"],
        ncpus=content.get("ncpus"),
        priority=content["priority"],
        options=content.get("options") or {},
        files=files,
        iterations=content.get("iterations"),
        parent=content.get("parent"),
        dependency=content.get("dependency"),
        name=content.get("name"),
        exec_mode=content["exec_mode"],
        wait_after_launch=content.get("wait_after_launch"),
        nochainprepr=content.get("nochainprepr", False),
        notransasrelease=content.get("notransasrelease", False),
        totranslate=content.get("totranslate"),
        toscore=content.get("toscore"),
        totuminer=content.get("totuminer"),
        visible_entities=visible_entities,
    )
    task_ids = [task.task_id for task in planned]
    log.info("%s launched %s on %s for %s", actor.trainer_id, task_ids, pool, entity)
    _audit(
        actor,
        entity,
        "task.launch",
        task_ids[0],
        after={
            "pool": pool,
            "image": f"{docker['image']}:{docker['tag']}",
            "ngpus": content["ngpus"],
            "ncpus": content.get("ncpus"),
            "priority": content["priority"],
            "tasks": task_ids,
        },
    )
    return [
        {"task_id": t.task_id, "type": t.label, "ngpus": t.ngpus, "ncpus": t.ncpus} for t in planned
    ]


def task_terminate(
    *, actor, engine: Engine, task: dict[str, Any], phase: str | None, by_the_task: bool = False
) -> dict:
    """Ask the engine to stop ``task``; nmt-wizard's messages, plus the status after.

    ``by_the_task``: the task reports its own end (its callback token): a status change, not
    a user's action, so no audit row."""
    task_id = task["task_id"]
    if task.get("status") == "stopped":
        return {"message": f"{task_id} already stopped", "status": "stopped"}
    phase = phase or "aborted"
    status = engine.request_terminate(task_id, phase)
    log.info("%s terminated %s (%s)", actor.trainer_id, task_id, phase)
    if not by_the_task:
        _audit(
            actor,
            task.get("entity"),
            "task.terminate",
            task_id,
            before={"status": task.get("status")},
            after={"status": status, "phase": phase},
        )
    return {"message": f"terminating {task_id}", "status": status}


def task_delete(*, actor, engine: Engine, task: dict[str, Any]) -> dict:
    """Delete a stopped task with its log and files (409 while it is not stopped)."""
    task_id = task["task_id"]
    engine.delete_task(task_id)
    log.info("%s deleted %s", actor.trainer_id, task_id)
    _audit(
        actor,
        task.get("entity"),
        "task.delete",
        task_id,
        before={key: task.get(key) for key in ("pool", "status", "message", "stopped_time")},
    )
    return {"message": f"deleted {task_id}"}


def pool_config_set(
    *, actor, engine: Engine, pool: str, name: str, entities: frozenset[str], config: dict
) -> None:
    """Add or replace the named configuration ``name`` of ``pool`` (validated; not selected).

    ``entities``, here and below: whose administrators see the audit row, the pool's owners
    before and after (:func:`tasks_api.scoping.pool_access`,
    :func:`tasks_api.scoping.check_config_entities`)."""
    engine.add_pool_config(pool, name, config)
    log.info("%s saved configuration %s of pool %s", actor.trainer_id, name, pool)
    _audit_pool(actor, entities, "pool.config_set", pool, after={"name": name})


def pool_config_select(
    *, actor, engine: Engine, pool: str, name: str, entities: frozenset[str]
) -> dict[str, Any]:
    """Select the named configuration ``name``; the worker reloads it (``pending`` until)."""
    before = engine.list_pool_configs(pool)["current"]
    selected = engine.select_pool_config(pool, name)
    log.info("%s selected configuration %s of pool %s", actor.trainer_id, name, pool)
    _audit_pool(
        actor,
        entities,
        "pool.config_select",
        pool,
        before={"current": before},
        after={"current": name},
    )
    return selected


def pool_config_delete(*, actor, engine: Engine, pool: str, name: str, entities: frozenset[str]):
    """Delete a named configuration that is not selected (409 otherwise)."""
    engine.delete_pool_config(pool, name)
    log.info("%s deleted configuration %s of pool %s", actor.trainer_id, name, pool)
    _audit_pool(actor, entities, "pool.config_delete", pool, before={"name": name})


def pool_config_replace(
    *, actor, engine: Engine, pool: str, entities: frozenset[str], config: dict[str, Any]
) -> None:
    """Make ``config`` the pool's configuration in effect (nmt-wizard HEAD's
    ``/service/configs/<pool>``): its ``name`` set to the pool and ``updated_at`` to now, stored
    as the named configuration ``posted`` (validated) and selected; the worker reloads it."""
    before = engine.list_pool_configs(pool)["current"]
    config = {**config, "name": pool, "updated_at": time.time()}
    engine.add_pool_config(pool, POSTED_CONFIG, config)
    engine.select_pool_config(pool, POSTED_CONFIG)
    log.info("%s replaced the configuration of pool %s", actor.trainer_id, pool)
    _audit_pool(
        actor,
        entities,
        "pool.config_replace",
        pool,
        before={"current": before},
        after={"current": POSTED_CONFIG, "updated_at": config["updated_at"]},
    )


def base_config_replace(*, actor, engine: Engine, config: dict[str, Any]) -> None:
    """Replace the shared base every pool's configuration merges over (nmt-wizard HEAD's
    ``/service/configs/_base``), refused when a pool's selected configuration would not stay
    valid; audited (the top-level keys that changed) under the super entity, whose
    administrators alone may do it."""
    before = engine.get_base_config()
    engine.set_base_config(config)
    log.info("%s replaced the base configuration", actor.trainer_id)
    changed = sorted(
        key for key in before.keys() | config.keys() if before.get(key) != config.get(key)
    )
    _audit(
        actor,
        settings.SNW_SUPER_ENTITY,
        "pool.base_config_replace",
        "_base",
        object_type="PoolBaseConfig",
        after={"changed": changed},  # the key names only: values may be secrets
    )


def _audit_pool(actor, entities: frozenset[str], action: str, pool: str, **states) -> None:
    """One row per entity of the pool (never the configuration text: it may hold secrets)."""
    for entity in sorted(entities):
        _audit(actor, entity, action, pool, object_type="Pool", **states)


def _audit(
    actor, entity: str | None, action: str, object_id: str, object_type: str = "Task", **states
) -> None:
    try:
        with transaction.atomic():  # a savepoint: a failed write leaves the connection usable
            audit_record(
                actor=actor,
                entity=entity,
                action=action,
                object_type=object_type,
                object_id=object_id,
                object_repr=object_id,
                **states,
            )
    except DatabaseError:
        # The engine has acted already: a 500 now would invite a retry (a second launch).
        log.exception("audit row lost: %s of %s by %s", action, object_id, actor.trainer_id)
