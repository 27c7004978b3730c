"""Scheduler: picks which queued tasks start on which host, and commits allocations atomically.

One pass walks the pool queue in order (highest priority first, then FIFO) and, for each task:

* **server rules** (nmt-wizard's per-server keys, :func:`server_accepts`): a server with
  ``entities`` takes only the tasks of those entities (the task's ``entity``), one with
  ``only_gpu_task`` takes no CPU-only task;
* **best fit**: among the usable hosts (not disabled, not quarantined, not held for another task,
  allowed by the task's ``server`` option and the server rules) with enough free GPUs *and* CPUs,
  the highest ``priority`` server wins, then the host left with the fewest free GPUs (then CPUs),
  so large holes stay available for large tasks;
* **explicit ids**: the GPUs and CPUs granted are ids from the host configuration (lowest free
  first), stored per slot in ``gpus:<pool>:<host>`` / ``cpus:<pool>:<host>``;
* **backfill window**: once a task is blocked, at most ``BACKFILL_WINDOW`` more queued tasks are
  examined in the pass (as Slurm's ``bf_max_job_test``), so a pass costs O(allocations + window)
  whatever the queue length;
* **reservation**: the first task that fits no host now but fits one when empty holds the host
  closest to fitting; later tasks may not use that host, so a large task is never starved by a
  stream of small ones (they backfill the other hosts);
* a task no configured host could ever hold (after a configuration reload, or because no server
  accepts its entity or CPU-only tasks) is passed over without counting against the backfill
  window and reserves nothing: it waits for a configuration that fits.

Decisions are computed in memory and committed one by one with the fenced ``allocate`` script,
which re-checks the slots and the task status: a race with another writer can only make a commit
fail, never double-allocate.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nmtwizard import defaults
from nmtwizard.services.base import HostSpec
from nmtwizard.store import TaskStore

__all__ = [
    "DEFAULT_SERVER_PRIORITY",
    "Allocation",
    "HostState",
    "Request",
    "Scheduler",
    "allowed_entities",
    "best_fit",
    "host_states",
    "server_accepts",
]

log = logging.getLogger(__name__)

#: A server's ``priority`` when its configuration gives none (nmt-wizard's default).
DEFAULT_SERVER_PRIORITY = 1


def allowed_entities(value: Any) -> frozenset[str] | None:
    """Entity codes a server's ``entities`` lets in, or None for any entity.

    nmt-wizard's form is ``{ENT: bool}`` (true: allowed); a list of codes means the same as
    ``{code: true}``. An empty or absent value restricts nothing, as upstream."""
    if not value:
        return None
    if isinstance(value, Mapping):
        return frozenset(str(code).upper() for code, allowed in value.items() if allowed)
    return frozenset(str(code).upper() for code in value)


def server_accepts(server: Mapping[str, Any], entity: str | None, ngpus: int) -> bool:
    """Whether a server (its configuration keys) may take a task of ``entity`` for ``ngpus``."""
    entities = allowed_entities(server.get("entities"))
    if entities is not None and (entity or "").upper() not in entities:
        return False
    return ngpus > 0 or not server.get("only_gpu_task")


@dataclass(frozen=True)
class Request:
    task_id: str
    ngpus: int
    ncpus: int
    hosts: tuple[str, ...] | None = None  # allowed hosts, None for any
    entity: str | None = None  # the owner entity, matched against servers' ``entities``


@dataclass
class HostState:
    name: str
    gpus: tuple[str, ...]
    cpus: tuple[str, ...]
    free_gpus: list[str]
    free_cpus: list[str]
    usable: bool = True
    reason: str = ""
    reserved_for: str | None = None
    tasks: set[str] = field(default_factory=set)
    server: Mapping[str, Any] = field(default_factory=dict)  # its configuration keys (params)
    priority: int = DEFAULT_SERVER_PRIORITY

    def accepts(self, req: Request) -> bool:
        """The server rules and the task's ``server`` option let ``req`` run here."""
        return (req.hosts is None or self.name in req.hosts) and server_accepts(
            self.server, req.entity, req.ngpus
        )

    def fits_now(self, req: Request) -> bool:
        return len(self.free_gpus) >= req.ngpus and len(self.free_cpus) >= req.ncpus

    def fits_empty(self, req: Request) -> bool:
        return len(self.gpus) >= req.ngpus and len(self.cpus) >= req.ncpus


@dataclass(frozen=True)
class Allocation:
    task_id: str
    host: str
    gpus: tuple[str, ...]
    cpus: tuple[str, ...]


def host_states(
    store: TaskStore, pool: str, hosts: list[HostSpec], now: float | None = None
) -> dict[str, HostState]:
    """Current free slots and availability of every host (a few Redis round trips)."""
    now = now or time.time()
    keys = store.keys
    slots = store.slots(pool, [h.name for h in hosts])
    pipe = store.redis.pipeline(transaction=False)
    pipe.hgetall(keys.disabled(pool))
    pipe.hgetall(keys.quarantine(pool))
    pipe.hgetall(keys.reserved(pool))
    disabled, quarantine, reserved = pipe.execute()
    states = {}
    for host in hosts:
        used_gpus, used_cpus = slots[host.name]
        state = HostState(
            host.name,
            host.gpus,
            host.cpus,
            [g for g in host.gpus if g not in used_gpus],
            [c for c in host.cpus if c not in used_cpus],
            reserved_for=reserved.get(host.name),
            tasks=set(used_gpus.values()) | set(used_cpus.values()),
            server=host.params,
            priority=host.params.get("priority", DEFAULT_SERVER_PRIORITY),
        )
        if host.name in disabled:
            state.usable, state.reason = False, f"disabled: {disabled[host.name]}"
        elif host.name in quarantine:
            info = json.loads(quarantine[host.name])
            if info["until"] > now:
                state.usable, state.reason = False, f"quarantined: {info['message']}"
        states[host.name] = state
    return states


def _eligible(state: HostState, req: Request) -> bool:
    return state.usable and state.accepts(req) and state.reserved_for in (None, req.task_id)


def best_fit(req: Request, states: dict[str, HostState]) -> Allocation | None:
    """The highest-priority server, then the host left with the fewest free GPUs, then CPUs,
    that can hold ``req`` now."""
    best, best_key = None, None
    for state in states.values():
        if not _eligible(state, req) or not state.fits_now(req):
            continue
        key = (
            -state.priority,
            len(state.free_gpus) - req.ngpus,
            len(state.free_cpus) - req.ncpus,
            state.name,
        )
        if best_key is None or key < best_key:
            best, best_key = state, key
    if best is None:
        return None
    return Allocation(
        req.task_id,
        best.name,
        tuple(best.free_gpus[: req.ngpus]),
        tuple(best.free_cpus[: req.ncpus]),
    )


def _could_hold(state: HostState, req: Request) -> bool:
    """Whether ``state``'s host, empty and usable, would be allowed and large enough."""
    return state.accepts(req) and state.fits_empty(req)


def _host_to_reserve(req: Request, states: dict[str, HostState]) -> HostState | None:
    """The host closest to fitting ``req`` among those that could hold it when empty."""
    candidates = [s for s in states.values() if _eligible(s, req) and s.fits_empty(req)]
    if not candidates:
        return None
    return max(candidates, key=lambda s: (len(s.free_gpus), len(s.free_cpus), s.name))


def _max_free(states: dict[str, HostState], with_reserved: bool = False) -> tuple[int, int]:
    """Most free GPUs and CPUs on any usable host (only unreserved ones unless asked)."""
    open_hosts = [
        s for s in states.values() if s.usable and (with_reserved or s.reserved_for is None)
    ]
    if not open_hosts:
        return (0, 0)
    return (max(len(s.free_gpus) for s in open_hosts), max(len(s.free_cpus) for s in open_hosts))


class Scheduler:
    """Runs allocation passes for one pool (the caller holds the lease and passes its token)."""

    def __init__(
        self,
        store: TaskStore,
        pool: str,
        window: int = defaults.QUEUE_WINDOW,
        backfill: int = defaults.BACKFILL_WINDOW,
        launch_retry: float = defaults.LAUNCH_RETRY,
    ):
        self.store = store
        self.backfill = backfill
        self.launch_retry = launch_retry
        self.pool = pool
        self.window = window
        self._requests: dict[str, Request] = {}  # requirements never change once queued

    def _load_requests(self, task_ids: list[str]) -> list[Request]:
        missing = [t for t in task_ids if t not in self._requests]
        if missing:
            fields = ["ngpus", "ncpus", "resource", "entity"]
            for task in self.store.get_many(missing, fields):
                hosts = task.get("resource")
                self._requests[task["task_id"]] = Request(
                    task["task_id"],
                    task.get("ngpus", 0),
                    task.get("ncpus", 0),
                    tuple(hosts) if hosts else None,
                    task.get("entity"),
                )
        if len(self._requests) > 4 * self.window:  # forget tasks that left the queue
            keep = set(task_ids)
            self._requests = {k: v for k, v in self._requests.items() if k in keep}
        return [self._requests[t] for t in task_ids if t in self._requests]

    def _queued_requests(self):
        """Requests in queue order, read in chunks so a pass only reads what it examines.

        Each chunk starts after the score of the last task read, not at a position: the pass
        removes the tasks it allocates from the queue, which would shift positions and skip
        tasks. Queue scores are unique in a pool (they end with a sequence number)."""
        chunk = 256
        after = "-inf"
        read = 0
        while read < self.window:
            pairs = self.store.redis.zrangebyscore(
                self.store.keys.queue(self.pool),
                after,
                "+inf",
                start=0,
                num=min(chunk, self.window - read),
                withscores=True,
            )
            if not pairs:
                return
            read += len(pairs)
            after = f"({pairs[-1][1]!r}"
            yield from self._load_requests([task_id for task_id, _score in pairs])
            if len(pairs) < chunk:
                return

    def run_pass(self, hosts: list[HostSpec], fence: str) -> list[Allocation]:
        """Allocate as many queued tasks as fit; return the committed allocations."""
        states = host_states(self.store, self.pool, hosts)
        wanted_reservation: tuple[str, str] | None = None
        done: list[Allocation] = []
        free = _max_free(states)
        holders = {s.reserved_for for s in states.values() if s.reserved_for}
        blocked = 0
        for req in self._queued_requests():
            if free == (0, 0) and _max_free(states, with_reserved=True) == (0, 0):
                break
            if blocked > self.backfill:
                break
            if not any(_could_hold(state, req) for state in states.values()):
                # No configured host could hold it even empty (a configuration reload shrank
                # the pool or dropped its server, or no server takes its entity or CPU-only
                # tasks): it waits for a configuration that can, without taking the backfill
                # window from the tasks behind it.
                continue
            fits_somewhere = (req.ngpus <= free[0] and req.ncpus <= free[1]) or (
                req.task_id in holders
            )
            allocation = best_fit(req, states) if fits_somewhere else None
            if allocation is None:
                if wanted_reservation is None:
                    host = _host_to_reserve(req, states)
                    if host is not None:
                        wanted_reservation = (host.name, req.task_id)
                        host.reserved_for = req.task_id
                        holders.add(req.task_id)
                        free = _max_free(states)
                blocked += 1
                continue
            result = self.store.allocate(
                req.task_id,
                self.pool,
                allocation.host,
                list(allocation.gpus),
                list(allocation.cpus),
                fence,
                self.launch_retry,
            )
            if result == 1:
                done.append(allocation)
                state = states[allocation.host]
                state.free_gpus = [g for g in state.free_gpus if g not in allocation.gpus]
                state.free_cpus = [c for c in state.free_cpus if c not in allocation.cpus]
                if state.reserved_for == req.task_id:
                    state.reserved_for = None
                self._requests.pop(req.task_id, None)
                free = _max_free(states)
            elif result == 0:
                self._requests.pop(req.task_id, None)  # left the queue meanwhile
            else:
                log.info("pool %s: slots changed under the scheduler; next pass", self.pool)
                break
        self._reconcile_reservations(wanted_reservation, fence)
        return done

    def _reconcile_reservations(self, wanted: tuple[str, str] | None, fence: str) -> None:
        current = self.store.reservations(self.pool)
        for host, task_id in current.items():
            if wanted != (host, task_id):
                self.store.unreserve(task_id, self.pool, host, fence)
        if wanted and current.get(wanted[0]) != wanted[1]:
            self.store.reserve(wanted[1], self.pool, wanted[0], fence)
