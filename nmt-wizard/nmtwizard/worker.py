"""The pool worker: ``nmtwizard-worker POOL`` (or ``python -m nmtwizard.worker POOL``).

Crash-only: all state is in Redis, so a worker may be killed at any instant and a new one (or a
standby) continues. Several workers may run for one pool; the :class:`~nmtwizard.lease.PoolLease`
lets one act at a time and every scheduling write is fenced by its token.

Each tick the leader:

1. renews the lease;
2. applies pool commands (restart, stop) and configuration selections; on gaining the lease it
   then recovers, with the selected configuration loaded: it makes sure allocated, running and
   terminating tasks have timers (``launch`` fires at once: the launch is idempotent);
3. sweeps due timers from ``timers:<pool>``: ``beat`` (expired beat -> ``expired``), ``launch``
   (launch an allocated task; armed with the allocation, so a launch that failed half-way is
   retried), ``check`` (poll a running task), ``work`` (terminate a terminating task), ``ttl``
   (clean a stopped task);
4. every ``refresh_counter`` ticks, runs a scheduling pass.

Service calls (launch, status, terminate) run in a small thread pool per host, so a slow host
never holds up the loop or the other hosts. A terminate request that arrives during a launch
leaves the task ``terminating``; the launch result is then recorded as the job and the task is
terminated right after, so the request is never lost.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis

from nmtwizard import defaults, hooks
from nmtwizard.exceptions import (
    ConfigError,
    InfrastructureError,
    LeaseLost,
    OutcomeUnknown,
    PoolNotFound,
    ServiceError,
    TaskNotFound,
    out_of_memory,
)
from nmtwizard.launcher_config import load_launcher_config
from nmtwizard.lease import PoolLease
from nmtwizard.pool_config import (
    ConfigLibrary,
    PoolConfig,
    load_default,
    load_pool,
    publish_description,
)
from nmtwizard.scheduler import Scheduler, allowed_entities
from nmtwizard.services import JobState, LaunchRequest, Service, ServiceContext, build_service
from nmtwizard.store import TaskStore
from nmtwizard.task import TaskStatus

__all__ = ["Worker", "main"]

log = logging.getLogger("nmtwizard.worker")

_END_MESSAGES = {JobState.COMPLETED: "completed", JobState.FAILED: "error", JobState.DEAD: "exited"}


def _owner(task: dict) -> dict:
    """The owner labels handed to the token minter."""
    return {key: task.get(key) for key in ("entity", "user", "trainer_id")}


class Worker:
    """Schedules one pool. ``run()`` loops until stopped; ``run_once()`` is one tick (tests)."""

    def __init__(
        self,
        store: TaskStore,
        pool: str,
        *,
        config_dir: Path | None = None,
        refresh_counter: int = 20,
        quarantine_time: int = 600,
        tick: float = defaults.TICK,
        lease_ttl: float = defaults.LEASE_TTL,
        worker_id: str | None = None,
        check_delay: float | None = None,
        callback_url: str | None = None,
    ):
        self.store = store
        self.default_callback_url = callback_url  # for pools whose configuration names none
        self.pool = pool
        self.keys = store.keys
        self.config_dir = config_dir
        # nmt-wizard counted 10 ms ticks between scheduling passes; keep that meaning.
        self.schedule_interval = max(1, refresh_counter) * 0.01
        self.quarantine_time = quarantine_time
        self.tick = tick
        self.check_delay = check_delay
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease = PoolLease(store.redis, self.keys, pool, self.worker_id, lease_ttl)
        # A dispatched check/terminate pushes its timer this far; if the call is lost with its
        # worker, the timer fires again once a successor holds the lease.
        self.retry_delay = 2 * lease_ttl
        self.library = ConfigLibrary(store.redis, self.keys)
        self.scheduler = Scheduler(store, pool, launch_retry=self.retry_delay)
        self.config: PoolConfig | None = None
        self.service: Service | None = None
        self.config_version = -1
        self.exit_code: int | None = None
        self._started_at = float("inf")  # set by start(); a stop before it does not concern us
        self._last_pass = 0.0
        self._executors: dict[str, ThreadPoolExecutor] = {}
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()
        self._last_heartbeat = 0.0
        self._store_full = False

    # ------------------------------------------------------------------ configuration

    def start(self) -> None:
        """Load and validate the configuration and the service; fail loudly on any error."""
        if self.config_dir is not None:
            base = load_pool(self.config_dir, self.pool)
            self.library.publish_default(load_default(self.config_dir))
            self.library.publish_base(base)
        elif not self.store.redis.sismember(self.keys.pools(), self.pool):
            raise ConfigError(f"pool {self.pool!r}: no config_dir and no configuration in Redis")
        self._load_selected()
        self._started_at = time.time()
        self._heartbeat(force=True)
        log.info(
            "worker %s ready for pool %s (%d hosts)",
            self.worker_id,
            self.pool,
            len(self.config.hosts),
        )
        self._warn_shared_process_hosts()
        if self.config.disabled or self.config.unusable:
            why = "disabled" if self.config.disabled else f"unusable: {self.config.unusable}"
            log.warning("pool %s is %s; its worker schedules nothing", self.pool, why)

    def _warn_shared_process_hosts(self) -> None:
        """Tasks run as plain processes share one Unix user: each can read the others'
        ``/proc/<pid>/environ`` and command line, hence their tokens. Say so for a host that
        serves more than one entity (its ``entities``, else the pool's; none listed: any)."""
        listed = self.config.data.get("entities")
        pool_entities = allowed_entities(list(listed) if isinstance(listed, dict) else listed)
        for host in self.service.process_hosts():
            entities = allowed_entities(host.params.get("entities")) or pool_entities
            if entities is None or len(entities) > 1:
                log.warning(
                    "pool %s: host %s runs the tasks of %s as plain processes of one Unix user: "
                    "each task can read the others' tokens; use runtime docker for shared pools",
                    self.pool,
                    host.name,
                    "entities " + ", ".join(sorted(entities)) if entities else "every entity",
                )

    def _load_selected(self) -> None:
        version = self.library.version(self.pool)
        config = self.library.load(self.pool)
        service = build_service(config, ServiceContext(self.store.redis, self.keys))
        self.config, self.service, self.config_version = config, service, version
        publish_description(self.store.redis, self.keys, config, on_worker=True)
        self.store.redis.hset(
            self.keys.pool(self.pool), mapping={"config_state": "active", "state": "running"}
        )

    @property
    def callback_url(self) -> str | None:
        """Where this pool's tasks call back: the pool's own URL, else the shared default."""
        return (self.config and self.config.callback_url) or self.default_callback_url

    def _delay(self) -> float:
        if self.check_delay is not None:
            return self.check_delay
        if self.callback_url and self.service is not None and self.service.calls_back:
            return defaults.CHECK_DELAY_NOTIFYING
        return defaults.CHECK_DELAY

    # ------------------------------------------------------------------ main loop

    def run(self) -> int:
        self.start()
        try:
            while self.exit_code is None:
                started = time.monotonic()
                self.run_once()
                time.sleep(max(0.0, self.tick - (time.monotonic() - started)))
        finally:
            self.shutdown()
        return self.exit_code

    def request_exit(self, code: int = 0) -> None:
        self.exit_code = code

    def shutdown(self) -> None:
        for executor in self._executors.values():
            executor.shutdown(wait=True)
        self.lease.release()
        self.store.redis.zrem(self.keys.workers(self.pool), self.worker_id)

    def run_once(self) -> None:
        """One tick. A full Redis (``maxmemory``) makes the worker stand by, not crash: it
        drops its lease token so that the first tick with room again re-reads the pool's
        state (``_recover``, as after a lost lease); the scheduling scripts write nothing when
        refused."""
        try:
            self._tick()
        except redis.ResponseError as exc:
            if not out_of_memory(exc):
                raise
            if not self._store_full:
                log.warning("pool %s: Redis is full (maxmemory); standing by", self.pool)
            self._store_full = True
            self.lease.token = None
            return
        if self._store_full:
            log.info("pool %s: Redis accepts writes again", self.pool)
            self._store_full = False

    def _tick(self) -> None:
        self._heartbeat()
        previous = self.lease.token
        try:
            if not self.lease.try_acquire():
                return
        except redis.ConnectionError:
            log.warning("pool %s: Redis unreachable", self.pool)
            return
        fence = self.lease.token
        was_leader = fence == previous  # a new token means a new term: recover
        try:
            if self._apply_commands():
                return
            if not was_leader:
                log.info(
                    "pool %s: worker %s holds the lease (epoch %s)",
                    self.pool,
                    self.worker_id,
                    self.lease.epoch,
                )
                self._recover()
            self._sweep_timers(fence)
            if not was_leader or time.monotonic() - self._last_pass >= self.schedule_interval:
                self._last_pass = time.monotonic()
                self._schedule(fence)
        except LeaseLost:
            log.warning("pool %s: lease lost; standing by", self.pool)
            self.lease.token = None

    def _heartbeat(self, force: bool = False) -> None:
        now = time.time()
        if force or now - self._last_heartbeat >= 1.0:
            self._last_heartbeat = now
            self.store.redis.zadd(self.keys.workers(self.pool), {self.worker_id: now})

    # ------------------------------------------------------------------ recovery and commands

    def _recover(self) -> None:
        """Arm the timers of the pool's tasks; run after the selected configuration is loaded,
        so a task allocated on a host the previous leader had just added is launched there."""
        now = time.time()
        for task in self.store.get_many(self.store.active_tasks(self.pool), ["status"]):
            task_id, status = task["task_id"], task.get("status")
            if status == TaskStatus.ALLOCATED:
                self.store.set_timer(self.pool, "launch", task_id, now)
            elif status == TaskStatus.RUNNING:
                self.store.redis.zadd(
                    self.keys.timers(self.pool), {f"check|{task_id}": now}, nx=True
                )
            elif status == TaskStatus.TERMINATING:
                self.store.set_timer(self.pool, "work", task_id, now)

    def _apply_commands(self) -> bool:
        """Handle restart/stop commands and config selections; True when the worker stops."""
        state = self.store.redis.hmget(
            self.keys.pool(self.pool),
            "command",
            "command_state",
            "config_version",
            "command_done_time",
        )
        command, command_state, version, done_time = state
        if (
            command == "stop"
            and command_state == "done"
            and float(done_time or 0) > self._started_at
        ):
            # The previous leader stopped the pool after this standby started: stop as well,
            # or the pool would go on scheduling under a "stopped" state.
            log.info("pool %s: stopped while worker %s stood by", self.pool, self.worker_id)
            self.request_exit(defaults.STOP_EXIT_CODE)
            return True
        if version is not None and int(version) != self.config_version:
            try:
                self._load_selected()
                log.info(
                    "pool %s: configuration %s active",
                    self.pool,
                    self.library.current_name(self.pool),
                )
            except (ConfigError, ServiceError) as exc:
                self.config_version = int(version)
                self.store.redis.hset(self.keys.pool(self.pool), "config_state", f"error: {exc}")
        if command_state != "pending":
            return False
        done = {"command_state": "done", "command_done_time": time.time()}
        if command == "restart":
            self._load_selected()
            self.store.redis.hset(self.keys.pool(self.pool), mapping=done)
            return False
        if command == "stop":
            self.store.redis.hset(self.keys.pool(self.pool), mapping={**done, "state": "stopped"})
            self.request_exit(defaults.STOP_EXIT_CODE)
            return True
        self.store.redis.hset(
            self.keys.pool(self.pool),
            mapping={"command_state": f"error: unknown command {command}"},
        )
        return False

    # ------------------------------------------------------------------ timers

    def _sweep_timers(self, fence: str) -> None:
        now = time.time()
        calls = {"launch": self._launch, "check": self._check, "work": self._terminate}
        for kind, task_id in self.store.due_timers(self.pool, now):
            if kind == "beat":
                _status, stopped = self.store.terminate(
                    task_id, "expired", fence=fence, only_if=TaskStatus.RUNNING
                )
                self.store.clear_timer(self.pool, "beat", task_id)
                hooks.revoke_tokens(stopped)
            elif kind == "ttl":
                self.store.cleanup(task_id)
                self.store.clear_timer(self.pool, "ttl", task_id)
            elif kind in calls:
                if self._busy(task_id):
                    continue
                # Pushed back before dispatch; if the call fails or this worker dies, the timer
                # fires again.
                self.store.set_timer(self.pool, kind, task_id, now + self.retry_delay)
                self._submit(task_id, calls[kind], task_id, fence)
            else:
                self.store.clear_timer(self.pool, kind, task_id)

    # ------------------------------------------------------------------ scheduling

    def _schedule(self, fence: str) -> None:
        if self.config.disabled or self.config.unusable:
            return  # takes no task; tasks already running are still followed to their end
        for allocation in self.scheduler.run_pass(self.config.hosts, fence):
            self._submit_launch(allocation.task_id, fence)

    # ------------------------------------------------------------------ service calls

    def _busy(self, task_id: str) -> bool:
        with self._lock:
            return task_id in self._in_flight

    def _submit_launch(self, task_id: str, fence: str) -> None:
        self._submit(task_id, self._launch, task_id, fence)

    def _submit(self, task_id: str, func, *args) -> None:
        host = self.store.redis.hget(self.keys.task(task_id), "alloc_host") or "-"
        with self._lock:
            if task_id in self._in_flight:
                return
            self._in_flight.add(task_id)
            executor = self._executors.get(host)
            if executor is None:
                executor = ThreadPoolExecutor(defaults.HOST_THREADS, f"host-{host}")
                self._executors[host] = executor

        def job():
            try:
                func(*args)
            except LeaseLost:
                log.warning("pool %s: lease lost during a call for %s", self.pool, task_id)
            except TaskNotFound:
                # Deleted meanwhile: drop the timer the sweep re-armed, or it fires forever.
                for kind in ("launch", "check", "work"):
                    self.store.clear_timer(self.pool, kind, task_id)
            except Exception:
                log.exception("pool %s: unexpected error for task %s", self.pool, task_id)
            finally:
                with self._lock:
                    self._in_flight.discard(task_id)

        executor.submit(job)

    def _launch(self, task_id: str, fence: str) -> None:
        task = self.store.get(task_id, with_hidden=True)
        if task["status"] != TaskStatus.ALLOCATED:
            self.store.clear_timer(self.pool, "launch", task_id)
            return
        content = task.get("content") or {}
        docker = content.get("docker", {})
        host = task["alloc_host"]
        request = LaunchRequest(
            task_id=task_id,
            host=host,
            gpus=tuple(task.get("alloc_gpus") or ()),
            cpus=tuple(task.get("alloc_cpus") or ()),
            image=docker.get("image", ""),
            tag=docker.get("tag", ""),
            command=tuple(docker.get("command", ())),
            registry=docker.get("registry"),
            options=content.get("options") or {},
            files=tuple(self.store.list_files(task_id)),
            callback_url=self.callback_url,
            token=hooks.mint_token(task_id, _owner(task)),
            beat_interval=self.config.data.get("callback_interval"),
            wait_after_launch=float(content.get("wait_after_launch") or 0),
            exec_mode=bool(content.get("exec_mode", True)),  # tasks older than the flag: exec
            support_statistics=bool(content.get("support_statistics", False)),
        )
        try:
            job = self.service.safe_launch(request)
        except InfrastructureError as exc:
            self._quarantine(host, str(exc))
            # Once an answer was lost, any failure keeps the task there: the job may run.
            if isinstance(exc, OutcomeUnknown) or task.get("launch_unknown_since"):
                if self._keep_trying_on(task, host, exc):
                    return  # still allocated there: the launch timer tries the host again
            else:
                self.store.append_log(
                    task_id, f"[launcher] {host} unusable, task re-queued: {exc}\n"
                )
            self.store.requeue(task_id, self.pool, fence)
            return
        except ServiceError as exc:
            self.store.append_log(task_id, f"[launcher] launch failed: {exc}\n")
            _status, stopped = self.store.terminate(task_id, "launch_error", fence=fence)
            hooks.revoke_tokens(stopped)
            return
        if task.get("launch_unknown_since"):  # the host answers again
            self.store.redis.hdel(self.keys.quarantine(self.pool), host)
        self.store.set_running(task_id, self.pool, job, self._delay(), fence)

    def _keep_trying_on(self, task: dict, host: str, exc: Exception) -> bool:
        """After a launch whose answer was lost, whether to retry it on ``host``: the job may
        run there, and starting it elsewhere would run it twice. Given up once the host has
        stayed silent for a quarantine period: the risk is said in the log, and the task's
        callback tokens are revoked so a copy still running there cannot act on the next one."""
        task_id = task["task_id"]
        now = time.time()
        since = task.get("launch_unknown_since")  # read with the task by _launch
        if since is None:
            since = now
            self.store.annotate(task_id, only_new=True, launch_unknown_since=str(now))
        since = float(since)
        if now - since < self.quarantine_time:
            self.store.append_log(
                task_id, f"[launcher] no answer from {host} to the launch; trying it there again\n"
            )
            return True
        self.store.append_log(
            task_id,
            f"[launcher] {host} silent for {now - since:.0f}s: task re-queued; a copy may still "
            f"run on {host}: {exc}\n",
        )
        hooks.revoke_tokens([task_id])
        return False

    def _check(self, task_id: str, fence: str) -> None:
        task = self.store.get(task_id)
        if task["status"] != TaskStatus.RUNNING:
            self.store.clear_timer(self.pool, "check", task_id)
            return
        try:
            result = self.service.safe_status(task_id, task.get("alloc_host", ""), task.get("job"))
        except ServiceError as exc:
            failures = self.store.count_status_failure(task_id, self.pool, fence)
            log.warning("pool %s: status of %s failed (%d): %s", self.pool, task_id, failures, exc)
            if failures >= defaults.MAX_STATUS_FAILURES:
                self.store.terminate(task_id, "lost_connection", fence=fence, only_if="running")
            else:
                self.store.set_timer(self.pool, "check", task_id, time.time() + self._delay())
            return
        if result.state is JobState.RUNNING:
            self.store.status_ok(task_id, self.pool, self._delay(), fence)
            return
        self.store.terminate(task_id, _END_MESSAGES[result.state], fence=fence, only_if="running")

    def _terminate(self, task_id: str, fence: str) -> None:
        task = self.store.get(task_id)
        if task["status"] != TaskStatus.TERMINATING:
            self.store.clear_timer(self.pool, "work", task_id)
            return
        host = task.get("alloc_host")
        if host:
            try:
                self.service.safe_terminate(task_id, host, task.get("job"))
            except InfrastructureError as exc:
                # The job may still hold the slots freed below: no new task on the host until
                # its quarantine ends.
                self._quarantine(host, f"could not stop {task_id}: {exc}")
                self.store.append_log(task_id, f"[launcher] could not stop it on {host}: {exc}\n")
            except ServiceError as exc:
                log.warning(
                    "pool %s: terminate of %s on %s failed: %s", self.pool, task_id, host, exc
                )
        hooks.revoke_tokens(self.store.finish(task_id, fence))

    def _quarantine(self, host: str, message: str) -> None:
        info = {"until": time.time() + self.quarantine_time, "message": message[:500]}
        self.store.redis.hset(self.keys.quarantine(self.pool), host, json.dumps(info))
        log.warning(
            "pool %s: host %s quarantined for %ss: %s",
            self.pool,
            host,
            self.quarantine_time,
            message,
        )

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until no service call is in flight (tests)."""
        deadline = time.monotonic() + timeout
        while self._in_flight and time.monotonic() < deadline:
            time.sleep(0.005)


# ---------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nmtwizard-worker", description=__doc__.split("\n")[0])
    parser.add_argument("pool", help="name of the pool to schedule")
    parser.add_argument("--tick", type=float, default=defaults.TICK, help="seconds per loop tick")
    parser.add_argument("--lease-ttl", type=float, default=defaults.LEASE_TTL)
    parser.add_argument(
        "--check-delay",
        type=float,
        default=None,
        help="seconds between status polls (default: 30, or 120 with callbacks)",
    )
    args = parser.parse_args(argv)
    try:
        settings = load_launcher_config()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for warning in settings.warnings:
        log.warning(warning)
    if not settings.redis_url:
        print(
            "configuration error: REDIS_URL (or [redis] in LAUNCHER_CONFIG) is required",
            file=sys.stderr,
        )
        return 2
    store = TaskStore.from_url(settings.redis_url)
    worker = Worker(
        store,
        args.pool,
        config_dir=settings.config_dir,
        refresh_counter=settings.refresh_counter,
        quarantine_time=settings.quarantine_time,
        tick=args.tick,
        lease_ttl=args.lease_ttl,
        check_delay=args.check_delay,
        callback_url=settings.callback_url,
    )
    signal.signal(signal.SIGTERM, lambda *_: worker.request_exit(0))
    signal.signal(signal.SIGINT, lambda *_: worker.request_exit(0))
    try:
        return worker.run()
    except (ConfigError, ServiceError, PoolNotFound) as exc:
        log.error("pool %s: cannot start: %s", args.pool, exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
