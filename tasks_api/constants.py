"""Constants of the task API: access rules per view action, size limits, list paging."""

from enum import StrEnum

from nmtwizard import defaults

__all__ = [
    "DEFAULT_LIST_LIMIT",
    "LIST_SCAN_LIMIT",
    "LOG_OFFSET_HEADER",
    "MAX_LIST_LIMIT",
    "MAX_LOG_REQUEST",
    "MAX_LOG_WAIT",
    "MAX_UPLOAD",
    "POSTED_CONFIG",
    "TASK_MESSAGE_HEADER",
    "TASK_STATUS_HEADER",
    "PoolRule",
    "TaskRule",
]


class TaskRule(StrEnum):
    """What a task route requires (see :func:`tasks_api.scoping.task_access`)."""

    READ = "read"  # `user` or `train` on the task's entity
    STOP = "stop"  # own task: `train`/`terminate_self`; another's: `terminate`; or its token
    DELETE = "delete"  # as STOP, but never the task's own token
    CALLBACK = "callback"  # its token, its owner, or `terminate` on its entity
    READ_OR_CALLBACK = "read_or_callback"  # files: readers, and the task downloading its inputs


class PoolRule(StrEnum):
    """What a pool route requires (see :func:`tasks_api.scoping.pool_access`)."""

    VIEW = "view"  # `train`, `edit_config` or `stop_config` on one of the pool's entities
    LAUNCH = "launch"  # `train` on one of the pool's entities
    EDIT_CONFIG = "edit_config"  # `edit_config` on every entity of the pool
    STOP_CONFIG = "stop_config"  # `stop_config` on every entity of the pool
    ADMIN = "admin"  # super administrators only (the shared base configuration)


#: Name under which ``POST /service/configs/<pool>`` (nmt-wizard HEAD) stores and selects the
#: configuration it receives; the pool file stays available as ``base``.
POSTED_CONFIG = "posted"
#: Bytes accepted in one file upload (launch file field or POST /task/file).
MAX_UPLOAD = defaults.MAX_FILE_SIZE
#: Bytes accepted in one log request (PATCH/POST /task/log).
MAX_LOG_REQUEST = defaults.MAX_LOG_SIZE
#: Paging of GET /task/list.
DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 1000
#: Tasks examined at most for a glob with inner wildcards (filtered after the prefix walk).
LIST_SCAN_LIMIT = 20_000
#: Response header of GET /task/log carrying the offset to read from next.
LOG_OFFSET_HEADER = "X-Log-Offset"
#: Response headers of GET /task/log: the task's status and message when the log was read (a
#: follower stops once a read returns no bytes with status ``stopped``).
TASK_STATUS_HEADER = "X-Task-Status"
TASK_MESSAGE_HEADER = "X-Task-Message"
#: Longest ``wait`` of GET /task/log (the engine's bound).
MAX_LOG_WAIT = defaults.MAX_LOG_WAIT
