"""Errors raised by the engine, shared by every module that reports them.

The REST layer maps them to HTTP answers: :class:`NotFound` subclasses to 404,
:class:`Conflict` subclasses to 409, :class:`InvalidRequest` to 400, :class:`EngineUnavailable`
to 503. Service plugins raise :class:`InfrastructureError` (the host is unusable: quarantine it
and retry elsewhere) or :class:`TaskError` (the task itself is wrong: it fails).
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
    "TaskError",
    "TaskNotFound",
    "TaskNotStopped",
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
