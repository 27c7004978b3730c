"""Code-side defaults of the engine; each one documents what it tunes."""

__all__ = [
    "BACKFILL_WINDOW",
    "CHECK_DELAY",
    "CHECK_DELAY_NOTIFYING",
    "HOST_THREADS",
    "LAUNCH_RETRY",
    "LEASE_TTL",
    "LOG_WAIT_RECHECK",
    "MAX_FILES_PER_TASK",
    "MAX_FILE_SIZE",
    "MAX_LAUNCH_FILES_BYTES",
    "MAX_LOG_SIZE",
    "MAX_LOG_WAIT",
    "MAX_PRIORITY",
    "MAX_STATUS_FAILURES",
    "MAX_TASK_FILES_BYTES",
    "NAMESPACE",
    "QUEUE_WINDOW",
    "STOP_EXIT_CODE",
    "TICK",
    "WORKER_BEAT_TTL",
]

NAMESPACE = "snw:"
"""Prefix of every Redis key the engine writes, so it can share a database with other users."""

LEASE_TTL = 3.0
"""Seconds a pool lease lives without renewal; a standby worker takes over after that."""

TICK = 0.05
"""Seconds between two iterations of the worker loop."""

LAUNCH_RETRY = 2 * LEASE_TTL
"""Seconds after an allocation (or a launch attempt) before the launch is tried again when the
task is still ``allocated``; service launches are idempotent, so a retry never starts it twice."""

MAX_LOG_SIZE = 4 * 1024 * 1024
"""Bytes kept of a task log; appends past it are cut and a truncation marker is written once."""

MAX_LOG_WAIT = 60.0
"""Longest ``wait`` (seconds) a log read may block for new bytes (a long poll); bounded so a
follower never holds its server thread for long, and re-asks instead."""

LOG_WAIT_RECHECK = 10.0
"""Seconds a waiting log read sleeps at most before re-reading Redis even without a
notification: a safety net for a lost pub/sub message (a reconnection, a writer of an older
version); the wake-up itself is a notification (:mod:`nmtwizard.logwatch`)."""

MAX_FILE_SIZE = 16 * 1024 * 1024
"""Bytes allowed for one task file."""

MAX_FILES_PER_TASK = 200
"""Number of files a task may hold."""

MAX_TASK_FILES_BYTES = 64 * 1024 * 1024
"""Bytes a task's files may total (launch files and files posted back): they live in Redis."""

MAX_LAUNCH_FILES_BYTES = 256 * 1024 * 1024
"""Bytes of files one launch may write: each task of a chain holds its own copy of the launch
files, so this bounds files times iterations (one request must not fill Redis)."""

MAX_PRIORITY = 99_999
"""Largest absolute task priority (keeps the queue score exact in a double)."""

CHECK_DELAY = 30.0
"""Seconds between two status polls of a running task when the pool gets no callbacks."""

CHECK_DELAY_NOTIFYING = 120.0
"""Seconds between two polls when tasks call back (``callback_url`` set): beats show liveness."""

MAX_STATUS_FAILURES = 5
"""Consecutive failed status polls after which a task ends with ``lost_connection``."""

QUEUE_WINDOW = 2000
"""Queued tasks examined per scheduling pass (highest priority first)."""

BACKFILL_WINDOW = 256
"""Queued tasks examined after the first one that cannot start, in one scheduling pass."""

WORKER_BEAT_TTL = 30
"""Seconds a worker registration lives without a heartbeat."""

STOP_EXIT_CODE = 55
"""Exit code of a worker told to stop; the supervisor does not restart it (as nmt-wizard)."""

HOST_THREADS = 2
"""Threads per host running service calls, so a slow host never stalls the others."""
