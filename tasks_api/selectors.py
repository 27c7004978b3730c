"""Reads of the task API: scoped task listings and pool summaries, in nmt-wizard's shapes."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from nmtwizard.api import Engine
from tasks_api.constants import LIST_SCAN_LIMIT

__all__ = [
    "pool_options_form",
    "pool_summary",
    "pool_task_types",
    "pool_without_unreadable_tasks",
    "task_list",
    "task_list_row",
    "task_status",
]

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


def _resource(task: dict[str, Any]) -> str:
    """nmt-wizard's ``resource``: the requested host(s), comma-separated, or ``auto``."""
    hosts = task.get("resource")
    if isinstance(hosts, list):
        return ",".join(map(str, hosts)) or "auto"
    return str(hosts) if hosts else "auto"


def _slot_names(slots) -> list[str] | None:
    """Allocated GPU/CPU slots as nmt-wizard lists them (strings), None when not allocated."""
    return None if slots is None else [str(slot) for slot in slots]


def task_list_row(task: dict[str, Any]) -> dict[str, Any]:
    """A task as one ``task/list`` row: every field nmt-wizard's rows carry, with its types
    (``resource`` and ``image`` strings, ``alloc_lgpu``/``alloc_lcpu`` lists of strings or
    null), then SNW's own (``entity``, ``user``, ``ngpus``, ``ncpus``, times, ``iteration``)."""
    docker = (task.get("content") or {}).get("docker") or {}
    image = f"{docker.get('image', '')}:{docker.get('tag', '')}" if docker else "-"
    return {
        "task_id": task["task_id"],
        "type": task.get("type"),
        "status": task.get("status"),
        "message": task.get("message"),
        "service": task.get("pool") or "",
        "resource": _resource(task),
        "alloc_resource": task.get("alloc_host"),
        "alloc_lgpu": _slot_names(task.get("alloc_gpus")),
        "alloc_lcpu": _slot_names(task.get("alloc_cpus")),
        "launched_time": task.get("launched_time"),
        "priority": task.get("priority"),
        "iterations": None,
        "parent": task.get("parent") or "",
        "owner": task.get("entity"),
        "image": image,
        "model": _model(list(docker.get("command") or [])),
        "entity": task.get("entity"),
        "user": task.get("user"),
        "ngpus": task.get("ngpus"),
        "ncpus": task.get("ncpus"),
        "queued_time": task.get("queued_time"),
        "running_time": task.get("running_time"),
        "stopped_time": task.get("stopped_time"),
        "iteration": task.get("iteration"),
    }


def task_status(task: dict[str, Any], files: dict[str, int]) -> dict[str, Any]:
    """``task/status`` as nmt-wizard answers it: only the fields that are set (no null
    ``*_time``), ``content`` as JSON text, ``resource`` a string, ``alloc_lgpu``/``alloc_lcpu``
    lists once allocated, ``files`` the names, ``current_time`` whole seconds; SNW's own
    fields ride along (``pool``, ``alloc_gpus``, ``file_sizes``, ...)."""
    status = {key: value for key, value in task.items() if value is not None}
    status["service"] = task.get("pool") or ""
    status["resource"] = _resource(task)
    if task.get("alloc_host") is not None:
        status["alloc_resource"] = task["alloc_host"]
    if task.get("content") is not None:
        status["content"] = json.dumps(task["content"])
    for upstream, own in (("alloc_lgpu", "alloc_gpus"), ("alloc_lcpu", "alloc_cpus")):
        if task.get(own) is not None:
            status[upstream] = _slot_names(task[own])
    status["files"] = sorted(files)
    status["file_sizes"] = files
    status["current_time"] = int(task["current_time"])
    return status


def pool_summary(
    description: dict[str, Any],
    entities: frozenset[str],
    task_types: dict[str, str | None],
    *,
    minimal: bool,
) -> dict[str, Any]:
    """One pool of ``service/list`` in nmt-wizard's shape (``usage``/``capacity`` "G (C)",
    ``busy`` "yes" without a worker, per-host ``detail``), plus SNW's own fields.

    ``task_types`` maps the task ids named on the hosts to their type (the usage lines)."""
    if minimal:
        return {"name": description["description"]}
    usage, capacity = description["usage"], description["capacity"]
    workers = description["workers"]
    summary = {
        "name": description["description"],
        "description": description["description"],
        "entities": sorted(entities),
        "usage": f"{usage['gpus']} ({usage['cpus']})",
        "capacity": f"{capacity['gpus']} ({capacity['cpus']})",
        "queued": description["queued"],
        "active": description["active"],
        "busy": description["busy"] if workers else "yes",
        "pid": ",".join(workers) or "**NO WORKER**",
        "state": description["state"],
        "disabled": description.get("disabled", False),  # "disabled" in its configuration
        "detail": {host["name"]: _host_detail(host, task_types) for host in description["hosts"]},
    }
    if description.get("unusable"):
        summary["unusable"] = description["unusable"]
    return summary


def _host_detail(host: dict[str, Any], task_types: dict[str, str | None]) -> dict[str, Any]:
    """A host as nmt-wizard's ``detail[<host>]`` (``busy``, ``reserved``, ``capacity`` [g, c],
    ``usage`` lines "<type> <task>: <gpus> (<cpus>)", ``avail_*``) plus SNW's host fields."""
    lines = [
        f"{task_types.get(task_id) or '-'} {task_id}: {gpus} ({cpus})"
        for task_id, (gpus, cpus) in host.get("task_slots", {}).items()
    ]
    hidden = host.get("hidden_slots") or [0, 0]
    if any(hidden):
        lines.append(f"other entities: {hidden[0]} ({hidden[1]})")
    capacity = [len(host["gpus"]), host["ncpus"]]
    return {
        **{k: v for k, v in host.items() if k not in ("task_slots", "hidden_slots")},
        "busy": "" if host["state"] == "ok" else host["reason"] or host["state"],
        "reserved": host["reserved_for"] or "",
        "capacity": capacity,
        "usage": lines,
        "avail_gpus": capacity[0] - host["used_gpus"],
        "avail_cpus": capacity[1] - host["used_cpus"],
    }


def pool_options_form(description: dict[str, Any]) -> dict[str, Any]:
    """What nmt-wizard's ``service/describe`` answers: a JSON-Form field per task option the
    user may choose, here ``server`` when the pool has more than one host."""
    hosts = [host["name"] for host in description["hosts"]]
    if len(hosts) < 2:
        return {}
    return {
        "server": {
            "title": "server",
            "type": "string",
            "description": "host to run the task on (any when not given)",
            "enum": hosts,
        }
    }


def pool_task_types(engine: Engine, descriptions: list[dict[str, Any]]) -> dict[str, str | None]:
    """The type of every task named on the hosts of ``descriptions`` (one engine read)."""
    named = sorted(
        {t for d in descriptions for host in d["hosts"] for t in host.get("task_slots", {})}
    )
    return {t: fields["type"] for t, fields in engine.task_fields(named, ["type"]).items()}


def pool_without_unreadable_tasks(
    engine: Engine, description: dict[str, Any], readable: frozenset[str] | None
) -> dict[str, Any]:
    """``description`` as a caller reading the tasks of ``readable`` entities (None: all) may
    see it: other entities' task ids are left out of its hosts (on a shared pool, an id tells
    another entity's trainer, language pair and model), as are the task a host is held for
    and the detail of a quarantine (it may name a task). What hidden tasks hold on a host is
    summed into ``hidden_slots`` ([gpus, cpus])."""
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
        slots = host.get("task_slots", {})
        hidden = [slots[t] for t in slots if t not in visible]
        hosts.append(
            {
                **host,
                "tasks": [t for t in host["tasks"] if t in visible],
                "task_slots": {t: slots[t] for t in slots if t in visible},
                "hidden_slots": [sum(s[0] for s in hidden), sum(s[1] for s in hidden)],
                "reserved_for": host["reserved_for"] if host["reserved_for"] in visible else None,
                "reason": reason,
            }
        )
    return {**description, "hosts": hosts}
