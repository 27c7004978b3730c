"""The task model: statuses, end messages, the transition table and field (de)serialisation.

A task is the Redis hash ``task:<id>``. Its lifecycle (nmt-wizard's, without ``allocating``)::

    launched --(parent completed / no parent)--> queued --> allocated --> running
        |                                          |           |  \\           |
        +--> stopped (dependency_error, aborted)   |           |   +-> queued  |
                                                   v           v  (host failed)v
                                                 stopped    terminating <------+
                                                                 |
                                                                 v
                                                              stopped

``launched`` is the waiting room of a chained task whose parent has not completed. Every status
change, in Python and in the Lua scripts of :mod:`nmtwizard.store`, is checked against
:data:`TRANSITIONS`.
"""

from __future__ import annotations

import enum
import json
from typing import Any

from nmtwizard.exceptions import InvalidTransition

__all__ = [
    "ACTIVE_STATUSES",
    "FLOAT_FIELDS",
    "INT_FIELDS",
    "JSON_FIELDS",
    "TRANSITIONS",
    "EndMessage",
    "TaskStatus",
    "allowed_sources",
    "check_transition",
    "decode_task",
    "task_type_from_command",
]


class TaskStatus(enum.StrEnum):
    LAUNCHED = "launched"
    QUEUED = "queued"
    ALLOCATED = "allocated"
    RUNNING = "running"
    TERMINATING = "terminating"
    STOPPED = "stopped"

    def __str__(self) -> str:
        return self.value


class EndMessage(enum.StrEnum):
    """Well-known values of the ``message`` field of a stopped task (callers may pass others)."""

    COMPLETED = "completed"
    ERROR = "error"
    ABORTED = "aborted"
    EXPIRED = "expired"
    DEPENDENCY_ERROR = "dependency_error"
    LAUNCH_ERROR = "launch_error"
    LOST_CONNECTION = "lost_connection"
    EXITED = "exited"

    def __str__(self) -> str:
        return self.value


S = TaskStatus
TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    S.LAUNCHED: frozenset({S.QUEUED, S.STOPPED}),
    S.QUEUED: frozenset({S.ALLOCATED, S.STOPPED}),
    S.ALLOCATED: frozenset({S.RUNNING, S.TERMINATING, S.QUEUED}),
    S.RUNNING: frozenset({S.TERMINATING}),
    S.TERMINATING: frozenset({S.STOPPED}),
    S.STOPPED: frozenset(),
}
ACTIVE_STATUSES = tuple(s for s in TaskStatus if s is not S.STOPPED)


def check_transition(current: str, new: str) -> None:
    """Raise :class:`InvalidTransition` unless ``current -> new`` is in the table."""
    if TaskStatus(new) not in TRANSITIONS[TaskStatus(current)]:
        raise InvalidTransition(f"a {current} task cannot become {new}")


def allowed_sources(new: TaskStatus) -> list[str]:
    """The statuses from which ``new`` may be reached (handed to the Lua scripts)."""
    return [src.value for src, targets in TRANSITIONS.items() if new in targets]


_TYPE_TOKENS = (
    ("train", "train"),
    ("trans", "trans"),
    ("preprocess", "prepr"),
    ("release", "relea"),
    ("buildvocab", "vocab"),
)


def task_type_from_command(command: list[str], exec_mode: bool = False) -> str:
    """nmt-wizard's task type: the first known token of the docker command, else ``exec``."""
    if not exec_mode:
        for token, kind in _TYPE_TOKENS:
            if token in command:
                return kind
    return "exec"


JSON_FIELDS = frozenset({"content", "job", "statistics", "alloc_gpus", "alloc_cpus", "resource"})
INT_FIELDS = frozenset({"priority", "ngpus", "ncpus", "iteration", "status_fail", "epoch"})
FLOAT_FIELDS = frozenset({"duration", "updated_time", "beat_duration"})
HIDDEN_FIELDS = frozenset({"queue_score"})


def decode_task(raw: dict[str, str], *, with_hidden: bool = False) -> dict[str, Any]:
    """Turn the stored string hash into typed values (JSON only, never pickle)."""
    task: dict[str, Any] = {}
    for field, value in raw.items():
        if field in HIDDEN_FIELDS and not with_hidden:
            continue
        if field in JSON_FIELDS:
            task[field] = json.loads(value) if value else None
        elif field in INT_FIELDS:
            task[field] = int(value)
        elif field in FLOAT_FIELDS or field.endswith("_time"):
            task[field] = float(value)
        else:
            task[field] = value
    return task
