"""Errors raised by the engine, shared by every module that reports them.

The REST layer maps them to HTTP answers: :class:`NotFound` subclasses to 404,
:class:`Conflict` subclasses to 409, :class:`InvalidRequest` to 400, :class:`EngineUnavailable`
to 503 (:class:`StoreFull`, a Redis at its ``maxmemory``, to 507). Service plugins raise
:class:`InfrastructureError` (the host is unusable: quarantine it and retry elsewhere) or
:class:`TaskError` (the task itself is wrong: it fails).
"""

__all__ = [
    "CapacityError",
    "ConfigError",
    "ConfigNotFound",
    "Conflict",
    "EngineError",
    "EngineUnavailable",
    "FileNotFoundInTask",
    "HostNotFound",
    "InfrastructureError",
    "InvalidFileName",
    "InvalidRequest",
    "InvalidTransition",
    "LeaseLost",
    "NotFound",
    "OutcomeUnknown",
    "PoolNotFound",
    "ServiceError",
    "StoreFull",
    "TaskError",
    "TaskNotFound",
    "TaskNotStopped",
    "out_of_memory",
]


class ConfigError(Exception):
    """A configuration value is missing or wrong; the message names the key and the source."""


class EngineError(Exception):
    """Base class of the errors the public API raises about tasks and pools."""

    code = "engine_error"


class NotFound(EngineError):
    code = "not_found"


class TaskNotFound(NotFound):
    code = "task_not_found"


class PoolNotFound(NotFound):
    code = "pool_not_found"


class ConfigNotFound(NotFound):
    code = "config_not_found"


class HostNotFound(NotFound):
    code = "host_not_found"


class FileNotFoundInTask(NotFound):
    code = "file_not_found"


class Conflict(EngineError):
    code = "conflict"


class InvalidTransition(Conflict):
    """A status change the lifecycle does not allow (e.g. running -> queued by a user)."""

    code = "invalid_transition"


class TaskNotStopped(Conflict):
    """Deleting a task that has not stopped yet."""

    code = "task_not_stopped"


class LeaseLost(Conflict):
    """A worker tried to change scheduling state without holding the pool lease (fencing)."""

    code = "lease_lost"


class InvalidRequest(EngineError):
    code = "invalid_request"


class InvalidFileName(InvalidRequest):
    """A task file name that is absolute, contains ``..`` or is otherwise unsafe."""

    code = "invalid_file_name"


class CapacityError(InvalidRequest):
    """No host of the pool could ever hold the requested GPUs/CPUs, or a size cap is exceeded."""

    code = "capacity"


class EngineUnavailable(EngineError):
    """Redis cannot be reached."""

    code = "engine_unavailable"


class StoreFull(EngineUnavailable):
    """Redis refused a write: it reached its ``maxmemory`` (it runs with ``noeviction``).

    Nothing of the refused command was stored, and a launch is one MULTI/EXEC: a refused launch
    leaves no task. Reads keep working; writes succeed again once memory is freed.
    """

    code = "store_full"


#: How Redis words a write refused at ``maxmemory``: ``OOM command not allowed when used memory
#: > 'maxmemory'`` (redis-py raises ``OutOfMemoryError``; from a Lua script, a ``ResponseError``
#: that quotes it after ``-``).
_OOM_MARK = "OOM command not allowed"


def out_of_memory(exc: BaseException | None) -> bool:
    """Whether ``exc`` or an error it was raised from (``__cause__``/``__context__``, even when
    re-raised ``from None``) is Redis refusing a write at its ``maxmemory``."""
    import redis  # the engine's client; imported here to keep this module dependency-free

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, StoreFull | redis.exceptions.OutOfMemoryError):
            return True
        if isinstance(exc, redis.exceptions.ResponseError) and _OOM_MARK in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class ServiceError(Exception):
    """Base of the errors a service plugin raises."""


class InfrastructureError(ServiceError):
    """The host or platform failed (connection, missing binary, disk...): quarantine the host."""


class OutcomeUnknown(InfrastructureError):
    """The command reached the host but its answer did not come back: it may have run. A
    launch that ends so is retried on the same host (starts are idempotent there), never
    elsewhere while that host may be running it."""


class TaskError(ServiceError):
    """The task itself cannot run (bad image, bad command...): it ends with ``launch_error``."""
