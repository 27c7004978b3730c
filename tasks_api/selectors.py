"""Reads of the task API: scoped task listings and pool summaries, in nmt-wizard's shapes."""

from __future__ import annotations

import fnmatch
from typing import Any

from nmtwizard.api import Engine
from tasks_api.constants import LIST_SCAN_LIMIT

__all__ = ["pool_summary", "pool_without_unreadable_tasks", "task_list", "task_list_row"]

_GLOB_CHARS = "*?["


def _split_pattern(pattern: str) -> tuple[str, str | None]:
    """``(id prefix, full glob or None when the prefix says it all)``.

    nmt-wizard matched ``task:<pattern>*``: a pattern is a glob on the id with an implied
    trailing ``*``; ``-``, ``-*`` and ``*`` mean every task.
    """
    if pattern in ("-", "-*", "*", ""):
        return "", None
    cut = min((pattern.index(c) for c in _GLOB_CHARS if c in pattern), default=len(pattern))
    prefix, rest = pattern[:cut], pattern[cut:]
    if rest.strip("*") == "":
        return prefix, None
    return prefix, pattern if pattern.endswith("*") else pattern + "*"


def task_list(
    engine: Engine,
    pattern: str,
    *,
    entities: frozenset[str] | None,
    status: str | None = None,
    pool: str | None = None,
    parent: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Tasks whose id matches ``pattern`` within ``entities`` (None: all), newest first."""
    prefix, glob = _split_pattern(pattern)
    query = {"entities": entities, "status": status, "pool": pool, "parent": parent}
    if glob is None:
        return engine.list_tasks(prefix or None, offset=offset, limit=limit, **query)
    matched: list[dict[str, Any]] = []
    scanned, page = 0, 500
    while scanned < LIST_SCAN_LIMIT and len(matched) < offset + limit:
        batch = engine.list_tasks(prefix or None, offset=scanned, limit=page, **query)
        matched.extend(t for t in batch if fnmatch.fnmatchcase(t["task_id"], glob))
        scanned += len(batch)
        if len(batch) < page:
            break
    return matched[offset : offset + limit]


def _model(command: list[str]) -> str:
    for flag in ("-m", "--model"):
        if flag in command:
            index = command.index(flag)
            if index + 1 < len(command):
                return command[index + 1]
    return "-"


def task_list_row(task: dict[str, Any]) -> dict[str, Any]:
    """A task as one ``task/list`` row (nmt-wizard's names, plus entity and user)."""
    docker = (task.get("content") or {}).get("docker") or {}
    image = f"{docker.get('image', '')}:{docker.get('tag', '')}" if docker else None
    return {
        "task_id": task["task_id"],
        "type": task.get("type"),
        "status": task.get("status"),
        "message": task.get("message"),
        "service": task.get("pool"),
        "entity": task.get("entity"),
        "owner": task.get("entity"),
        "user": task.get("user"),
        "parent": task.get("parent"),
        "priority": task.get("priority"),
        "ngpus": task.get("ngpus"),
        "ncpus": task.get("ncpus"),
        "alloc_resource": task.get("alloc_host"),
        "alloc_lgpu": task.get("alloc_gpus"),
        "alloc_lcpu": task.get("alloc_cpus"),
        "launched_time": task.get("launched_time"),
        "queued_time": task.get("queued_time"),
        "running_time": task.get("running_time"),
        "stopped_time": task.get("stopped_time"),
        "image": image,
        "model": _model(list(docker.get("command") or [])),
        "iteration": task.get("iteration"),
    }


def pool_summary(
    description: dict[str, Any], entities: frozenset[str], *, minimal: bool, verbose: bool
) -> dict[str, Any]:
    """One pool of ``service/list``: nmt-wizard's fields (``usage``/``capacity`` as "G (C)")."""
    if minimal:
        return {"name": description["description"]}
    usage, capacity = description["usage"], description["capacity"]
    summary = {
        "name": description["description"],
        "description": description["description"],
        "entities": sorted(entities),
        "usage": f"{usage['gpus']} ({usage['cpus']})",
        "capacity": f"{capacity['gpus']} ({capacity['cpus']})",
        "queued": description["queued"],
        "active": description["active"],
        "busy": description["busy"],
        "pid": ", ".join(description["workers"]) or "**NO WORKER**",
        "state": description["state"],
        # Added for issue 13: a pool its configuration disables, or one that cannot run tasks.
        "disabled": description.get("disabled", False),
    }
    if description.get("unusable"):
        summary["unusable"] = description["unusable"]
    if verbose:
        summary["detail"] = {host["name"]: host for host in description["hosts"]}
    return summary


def pool_without_unreadable_tasks(
    engine: Engine, description: dict[str, Any], readable: frozenset[str] | None
) -> dict[str, Any]:
    """``description`` as a caller reading the tasks of ``readable`` entities (None: all) may
    see it: other entities' task ids are left out of its hosts (on a shared pool, an id tells
    another entity's trainer, language pair and model), as are the task a host is held for
    and the detail of a quarantine (it may name a task)."""
    if readable is None:
        return description
    named = {t for host in description["hosts"] for t in host["tasks"]}
    named |= {host["reserved_for"] for host in description["hosts"] if host["reserved_for"]}
    entities = engine.task_entities(sorted(named))
    visible = {task_id for task_id, entity in entities.items() if entity in readable}
    hosts = []
    for host in description["hosts"]:
        reason = host["reason"]
        if reason.startswith("quarantined"):
            reason = "quarantined"
        hosts.append(
            {
                **host,
                "tasks": [t for t in host["tasks"] if t in visible],
                "reserved_for": host["reserved_for"] if host["reserved_for"] in visible else None,
                "reason": reason,
            }
        )
    return {**description, "hosts": hosts}
