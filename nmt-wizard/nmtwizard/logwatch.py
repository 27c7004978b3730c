"""LogWatch: wake log readers waiting for new bytes (the long poll of ``GET /task/log``).

Every path that grows a log (``log_append``, the host ``LogSync`` copy, a replace) and every
stop of a task (``set_status`` to ``stopped``) publishes the task id on the ``log-events``
channel (:mod:`nmtwizard.keys`), inside the same Lua script as the write. A process holds one
subscription, read by one daemon thread, whatever the number of waiting readers: a reader
registers a :class:`threading.Event` for its task, reads, and sleeps on the event, so an idle
follower costs a parked thread and no Redis round trip. The subscription is made before the
first wait returns control, and a reader registers before it reads, so a line posted between
the read and the wait still wakes it.

A lost notification (the subscription reconnecting, a writer of an older version) delays a
reader by at most :data:`nmtwizard.defaults.LOG_WAIT_RECHECK` seconds: waits are cut into
slices that re-read Redis. While the subscription is down every reader is woken and re-reads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator

import redis

__all__ = ["LogWatch"]

log = logging.getLogger(__name__)

_RECONNECT_DELAY = 1.0
_SUBSCRIBE_TIMEOUT = 2.0


class LogWatch:
    """One pub/sub subscription per process, dispatching task ids to waiting readers."""

    def __init__(self, client: redis.Redis, channel: str):
        self.client = client
        self.channel = channel
        self._lock = threading.Lock()
        self._waiters: dict[str, set[threading.Event]] = {}
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    # ------------------------------------------------------------------ readers

    @contextlib.contextmanager
    def watching(self, task_id: str) -> Iterator[threading.Event]:
        """An event set whenever ``task_id``'s log grows or the task stops, while in the block.

        Register first, then read: nothing published after the registration is missed.
        """
        self._start()
        event = threading.Event()
        with self._lock:
            self._waiters.setdefault(task_id, set()).add(event)
        try:
            self._ready.wait(_SUBSCRIBE_TIMEOUT)
            yield event
        finally:
            with self._lock:
                events = self._waiters.get(task_id)
                if events is not None:
                    events.discard(event)
                    if not events:
                        del self._waiters[task_id]

    @property
    def subscribed(self) -> bool:
        return self._ready.is_set()

    def waiting(self) -> int:
        """Number of readers waiting now (for tests and benchmarks)."""
        with self._lock:
            return sum(len(events) for events in self._waiters.values())

    # ------------------------------------------------------------------ the listener

    def _start(self) -> None:
        # A forked child (a server worker forked after first use) restarts its own listener.
        if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
                return
            self._ready.clear()
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._listen, name="snw-logwatch", daemon=True)
            self._thread.start()

    def _wake(self, task_id: str | None) -> None:
        with self._lock:
            if task_id is None:
                events = [e for group in self._waiters.values() for e in group]
            else:
                events = list(self._waiters.get(task_id, ()))
        for event in events:
            event.set()

    def _listen(self) -> None:
        while True:
            pubsub = self.client.pubsub()
            try:
                pubsub.subscribe(self.channel)
                while True:
                    message = pubsub.get_message(timeout=30.0)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        self._ready.set()
                    elif message["type"] == "message":
                        data = message["data"]
                        self._wake(data.decode() if isinstance(data, bytes) else data)
            except Exception as exc:  # the listener must outlive any failure
                log.warning("log notifications interrupted (%s); readers re-read Redis", exc)
                self._ready.clear()
                self._wake(None)
                with contextlib.suppress(Exception):
                    pubsub.close()
                threading.Event().wait(_RECONNECT_DELAY)
