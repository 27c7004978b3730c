"""Engine: the public Python API the Django layer calls. Views never build Redis keys.

Every method raises engine exceptions (:mod:`nmtwizard.exceptions`): ``NotFound`` subclasses
map to 404, ``Conflict`` subclasses to 409, ``InvalidRequest`` to 400, ``EngineUnavailable`` to 503
(``StoreFull``, Redis at its ``maxmemory``, to 507).
The owner entity and user are opaque labels stored and indexed on each task; the engine knows
nothing of permissions, so callers pass the entity scope they computed (``entities={...}``).

Pool commands (restart, stop, config select) answer at once with a ``pending`` state that the
pool's worker then carries out (``command_state`` / ``config_state`` become ``done``/``active``).
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from nmtwizard import chains, defaults, hooks, ids
from nmtwizard.exceptions import (
    CapacityError,
    EngineUnavailable,
    FileNotFoundInTask,
    HostNotFound,
    InvalidRequest,
    PoolNotFound,
    StoreFull,
    TaskNotFound,
    out_of_memory,
)
from nmtwizard.logwatch import LogWatch
from nmtwizard.pool_config import (
    ConfigLibrary,
    load_all_pools,
    load_default,
    publish_description,
)
from nmtwizard.scheduler import server_accepts
from nmtwizard.store import TaskStore, check_file_name
from nmtwizard.task import TaskStatus

__all__ = ["LIST_FIELDS", "Engine", "LogChunk"]

LIST_FIELDS = [
    "type",
    "status",
    "message",
    "pool",
    "entity",
    "user",
    "parent",
    "priority",
    "ngpus",
    "ncpus",
    "resource",
    "alloc_host",
    "alloc_gpus",
    "alloc_cpus",
    "launched_time",
    "queued_time",
    "running_time",
    "stopped_time",
    "content",
    "iteration",
]


@dataclass(frozen=True, slots=True)
class LogChunk:
    """What a log read returns: the bytes past the offset asked, the offset to ask next, and
    the task's status and message when it was read (``stopped``: the follower may stop)."""

    data: bytes
    offset: int
    status: str
    message: str

    @property
    def stopped(self) -> bool:
        return self.status == TaskStatus.STOPPED.value


def _unavailable(method):
    """Turn Redis connection failures into EngineUnavailable (503), and a write refused at
    Redis's ``maxmemory`` into StoreFull (507)."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise EngineUnavailable(f"task store unreachable: {exc}") from None
        except redis.ResponseError as exc:
            if out_of_memory(exc):
                raise StoreFull(f"task store full (Redis maxmemory reached): {exc}") from None
            raise

    return wrapper


def _require_open(pool: str, info: dict[str, str]) -> None:
    """Refuse a launch on a pool whose configuration disables it or that cannot run tasks."""
    if info.get("disabled") == "1":
        raise InvalidRequest(f'pool {pool!r} is disabled ("disabled" in its configuration)')
    if info.get("unusable"):
        raise InvalidRequest(f"pool {pool!r} cannot run tasks: {info['unusable']}")


class Engine:
    """Facade over the task store and pool state for one Redis database."""

    def __init__(self, client: redis.Redis, namespace: str = defaults.NAMESPACE):
        self.store = TaskStore(client, namespace)
        self.redis = client
        self.keys = self.store.keys
        self.configs = ConfigLibrary(client, self.keys)
        self._log_watch: LogWatch | None = None

    @classmethod
    def from_url(cls, url: str, namespace: str = defaults.NAMESPACE) -> Engine:
        return cls(redis.Redis.from_url(url, decode_responses=True), namespace)

    # ------------------------------------------------------------------ pools: setup

    @_unavailable
    def sync_pool_configs(self, config_dir: Path) -> list[str]:
        """Load every pool file of ``config_dir`` (validated) and publish it as ``base``.

        Called at launcher start so tasks can be queued before a worker runs; a pool whose
        selected configuration is not ``base`` keeps its description until its worker reloads.
        Pools merge over the shared base in force: a posted one while ``default.json`` is
        unchanged since (:meth:`ConfigLibrary.publish_default`).
        """
        pools = load_all_pools(config_dir)
        self.configs.publish_default(load_default(config_dir))
        for config in pools.values():
            self.configs.publish_base(config)
            if self.configs.current_name(config.name) == "base":
                publish_description(self.redis, self.keys, config)
        return sorted(pools)

    def _pool_info(self, pool: str) -> dict[str, str]:
        info = self.redis.hgetall(self.keys.pool(pool))
        if not info or "hosts" not in info:
            raise PoolNotFound(f"unknown pool {pool!r}")
        return info

    # ------------------------------------------------------------------ tasks: launch

    @_unavailable
    def launch_chain(
        self,
        *,
        pool: str,
        trainer_id: str,
        entity: str,
        user: str,
        image: str,
        tag: str,
        command: list[str],
        registry: str = "auto",
        ngpus: int = 1,
        ncpus: int | None = None,
        priority: int = 0,
        options: dict[str, Any] | None = None,
        files: dict[str, bytes] | None = None,
        iterations: int | None = None,
        parent: str | None = None,
        dependency: str | None = None,
        name: str | None = None,
        exec_mode: bool = False,
        wait_after_launch: float | None = None,
        nochainprepr: bool = False,
        notransasrelease: bool = False,
        totranslate: list | None = None,
        toscore: list | None = None,
        totuminer: list | None = None,
        visible_entities: frozenset[str] | set[str] | None = None,
    ) -> list[chains.PlannedTask]:
        """Create the tasks of one launch (:mod:`nmtwizard.chains`), all-or-nothing.

        The parent model is ``parent`` when given (it must exist; outside exec mode it becomes
        the command's ``-m``), else the command's ``-m`` (or config ``model``): the first task
        waits for that task when it exists and its entity is in ``visible_entities`` (None:
        any); a model that is no task here (or not one the caller may see) only names the ids.
        Uploaded ``files`` go to the prepr, main and score tasks (and to a translation or
        TU-miner task reading one in ``${TMP_DIR}``). Raises InvalidRequest / CapacityError for
        bad input, PoolNotFound, TaskNotFound (unknown ``parent`` or ``dependency``).
        ``dependency`` (nmt-wizard HEAD's) replaces what the first task waits for and leaves the
        model as it is.
        """
        info = self._pool_info(pool)
        _require_open(pool, info)
        options = {} if options is None else options
        if not isinstance(options, dict):
            raise InvalidRequest("invalid options field: expected an object")
        if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
            raise InvalidRequest("docker command must be a list of strings")
        if not isinstance(image, str) or not image or not isinstance(tag, str) or not tag:
            raise InvalidRequest("docker image and tag are required strings")
        registry = self._resolve_registry(info, registry, image)
        if not isinstance(priority, int) or abs(priority) > defaults.MAX_PRIORITY:
            raise InvalidRequest(f"priority must be an integer within ±{defaults.MAX_PRIORITY}")
        ngpus = _count(ngpus, "ngpus")
        ncpus = None if ncpus is None else _count(ncpus, "ncpus")
        files = dict(files or {})
        total = self._check_files(files)
        if parent:
            if not self.redis.exists(self.keys.task(parent)):
                raise TaskNotFound(f"parent task {parent} does not exist")
            if not exec_mode:
                command = chains.with_model(command, parent)
            model, depends_on = parent, parent
        else:
            model = chains.model_of(command)
            depends_on = self._waitable(model, visible_entities)
        if dependency:
            if not self.redis.exists(self.keys.task(dependency)):
                raise TaskNotFound(f"dependency task {dependency} does not exist")
            depends_on = dependency
        plan = chains.plan_chain(
            chains.ChainRequest(
                trainer_id=trainer_id,
                command=command,
                image=image,
                registry=registry,
                tag=tag,
                options=options,
                wait_after_launch=wait_after_launch,
                exec_mode=bool(exec_mode),
                ngpus=ngpus,
                ncpus=ncpus,
                cpu_allocation=json.loads(info.get("cpu_allocation") or "{}"),
                priority=priority,
                iterations=iterations,
                name=name,
                model=model,
                depends_on=depends_on,
                nochainprepr=bool(nochainprepr),
                notransasrelease=bool(notransasrelease),
                totranslate=totranslate,
                toscore=toscore,
                totuminer=totuminer,
                utility_registry=lambda utility: self._resolve_registry(info, "auto", utility),
            )
        )
        for task_image in dict.fromkeys(t.content["docker"]["image"] for t in plan):
            _check_contract_image(info, pool, task_image, exec_mode)  # score/tuminer children too
        hosts = None
        for capacity in dict.fromkeys((t.ngpus, t.ncpus) for t in plan):
            hosts = self._check_capacity(info, pool, options, *capacity, entity)
        receivers = [t.task_id for t in plan if t.with_files]
        if total * len(receivers) > defaults.MAX_LAUNCH_FILES_BYTES:
            raise CapacityError(
                f"{len(receivers)} tasks would store {total * len(receivers)} bytes of files "
                f"(each keeps a copy); a launch stores at most {defaults.MAX_LAUNCH_FILES_BYTES}"
            )
        now = time.time()
        first_seq = self.store.new_queue_scores(pool, len(plan))
        tasks = [
            {
                "id": t.task_id,
                "type": t.type,
                "pool": pool,
                "entity": entity,
                "user": user,
                "trainer_id": trainer_id,
                "parent": t.parent,
                "priority": min(t.priority, defaults.MAX_PRIORITY),
                "ngpus": t.ngpus,
                "ncpus": t.ncpus,
                "resource": hosts,
                "iteration": t.iteration,
                "content": t.content,
                "launched_time": now,
                "queue_score": -min(t.priority, defaults.MAX_PRIORITY) * 1e10 + first_seq + i,
            }
            for i, t in enumerate(plan)
        ]
        self.store.create_tasks(tasks, files or None, parent=depends_on, files_for=receivers)
        return plan

    def _waitable(self, model: str | None, visible_entities) -> str | None:
        """``model`` when it is a task here the caller may see (the launch waits for it)."""
        if not model or not ids.is_valid_task_id(model):
            return None
        entity = self.redis.hget(self.keys.task(model), "entity")
        if entity is None or (visible_entities is not None and entity not in visible_entities):
            return None
        return model

    @staticmethod
    def _check_files(files: dict[str, bytes]) -> int:
        """Refuse bad names and sizes of a launch's uploads; return their total size."""
        for file_name, data in files.items():
            check_file_name(file_name)
            if len(data) > defaults.MAX_FILE_SIZE:
                raise CapacityError(f"file {file_name} exceeds {defaults.MAX_FILE_SIZE} bytes")
            parts = file_name.split("/")
            for depth in range(1, len(parts)):
                if "/".join(parts[:depth]) in files:  # written as a file and a directory
                    raise InvalidRequest(
                        f"file {file_name} is under file {'/'.join(parts[:depth])}"
                    )
        if len(files) > defaults.MAX_FILES_PER_TASK:
            raise CapacityError(f"at most {defaults.MAX_FILES_PER_TASK} files per task")
        total = sum(len(data) for data in files.values())
        if total > defaults.MAX_TASK_FILES_BYTES:
            raise CapacityError(
                f"files total {total} bytes; a task holds at most {defaults.MAX_TASK_FILES_BYTES}"
            )
        return total

    @staticmethod
    def _resolve_registry(info: dict, registry: str, image: str) -> str | None:
        names = json.loads(info.get("registries") or "[]")
        if registry == "auto":
            if not names:
                return None
            if "/" not in image:
                raise InvalidRequest("image should be repository/name")
            repository = image.split("/", 1)[0]
            chosen = json.loads(info.get("registry_defaults") or "{}").get(repository)
            if chosen is None:
                raise InvalidRequest(f"cannot find registry for repository {repository}")
            return chosen
        if names and registry not in names:
            raise InvalidRequest(f"unknown docker registry {registry}")
        return registry

    @staticmethod
    def _check_capacity(info, pool, options, ngpus, ncpus, entity) -> list[str] | None:
        hosts = json.loads(info["hosts"])
        server = options.get("server")
        wanted = None
        if server is not None:
            wanted = [server] if isinstance(server, str) else list(server)
            unknown = set(wanted) - {h["name"] for h in hosts}
            if unknown:
                raise InvalidRequest(f"unknown server(s) {', '.join(sorted(map(str, unknown)))}")
        large_enough = [
            h
            for h in hosts
            if (wanted is None or h["name"] in wanted)
            and len(h["gpus"]) >= ngpus
            and h["ncpus"] >= ncpus
        ]
        if not large_enough:
            raise CapacityError(f"no resource available on {pool} for {ngpus} gpus ({ncpus} cpus)")
        if not any(server_accepts(h, entity, ngpus) for h in large_enough):
            kind = "tasks" if ngpus else "CPU-only tasks"
            raise CapacityError(
                f"no server of {pool} that could hold the task takes {kind} of entity {entity} "
                "(server keys entities, only_gpu_task)"
            )
        return wanted

    # ------------------------------------------------------------------ tasks: read

    @_unavailable
    def get_task(self, task_id: str, *, with_files: bool = True) -> dict[str, Any]:
        """Every field of the task plus ``current_time`` and, unless ``with_files`` is off (an
        access check on a hot callback path needs one read, not three), ``files``
        ({name: size})."""
        task = self.store.get(task_id)
        if with_files:
            task["files"] = self.store.list_files(task_id)
        task["current_time"] = time.time()
        return task

    @_unavailable
    def list_tasks(
        self,
        pattern: str | None = None,
        *,
        entities: set[str] | None = None,
        users: set[str] | None = None,
        status: str | None = None,
        pool: str | None = None,
        parent: str | None = None,
        offset: int = 0,
        limit: int = 100,
        fields: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Tasks newest first. ``pattern`` is an id prefix (a trailing ``*`` is accepted)."""
        prefix = (pattern or "").rstrip("*") or None
        if status is not None:
            TaskStatus(status)
        return self.store.list_tasks(
            prefix=prefix,
            entities=entities,
            users=users,
            status=status,
            pool=pool,
            parent=parent,
            offset=offset,
            limit=limit,
            fields=fields or LIST_FIELDS,
        )

    # ------------------------------------------------------------------ tasks: write

    @_unavailable
    def request_terminate(self, task_id: str, message: str = "aborted") -> str:
        """Ask for termination; returns the status after the request (``stopped`` at once for
        tasks not started yet, ``terminating`` otherwise; a no-op on stopping tasks)."""
        if not re.match(r"^[a-z_]{1,32}$", message or ""):
            raise InvalidRequest("message: lower-case letters and '_' only")
        status, stopped = self.store.terminate(task_id, message)
        hooks.revoke_tokens(stopped)
        return status

    @_unavailable
    def delete_task(self, task_id: str) -> None:
        """Delete a stopped task with its log and files; TaskNotStopped (409) otherwise."""
        if not self.store.cleanup(task_id):
            raise TaskNotFound(f"task {task_id} does not exist")

    @_unavailable
    def beat(self, task_id: str, duration: float = 0, container_id: str | None = None) -> str:
        """Liveness from the task: without another beat within ``duration`` s it expires."""
        if duration < 0:
            raise InvalidRequest("invalid duration value")
        return self.store.beat(task_id, duration, container_id)

    @_unavailable
    def append_log(self, task_id: str, data: bytes | str, duration: float | None = None) -> int:
        size = self.store.append_log(task_id, data)
        if duration:
            self.beat(task_id, duration)
        return size

    @_unavailable
    def sync_log(
        self, task_id: str, offset: int, data: bytes, duration: float | None = None
    ) -> int:
        """Idempotent append of host log bytes found at host ``offset`` (the runner's
        ``PATCH /task/log/<id>?offset=N``, shared with status polls through LogSync); returns
        the host offset now copied up to. Added for the REST API (issue 7)."""
        from nmtwizard.services.hostexec import LogSync

        if offset < 0:
            raise InvalidRequest("offset must be non-negative")
        copied = LogSync(self.redis, self.keys).append(task_id, offset, data)
        if copied < 0:
            raise TaskNotFound(f"task {task_id} does not exist")
        if duration:
            self.beat(task_id, duration)
        return copied

    @_unavailable
    def write_log(self, task_id: str, data: bytes | str) -> int:
        """Replace the log (truncated to the cap)."""
        return self.store.append_log(task_id, data, replace=True)

    @_unavailable
    def read_log(self, task_id: str, offset: int = 0) -> tuple[bytes, int]:
        """``(bytes from offset, next offset)``; poll with the returned offset while it grows."""
        return self.store.read_log(task_id, offset)

    @property
    def log_watch(self) -> LogWatch:
        """The process's subscription to log notifications (started on first wait)."""
        if self._log_watch is None:
            self._log_watch = LogWatch(self.redis, self.keys.log_events())
        return self._log_watch

    @_unavailable
    def follow_log(
        self,
        task_id: str,
        offset: int = 0,
        wait: float = 0.0,
        *,
        before_wait: Callable[[], None] | None = None,
    ) -> LogChunk:
        """:meth:`read_log` that, when nothing lies past ``offset`` and the task has not
        stopped, waits up to ``wait`` seconds (at most ``defaults.MAX_LOG_WAIT``) for new bytes
        or the task's end, returning as soon as either is published (:mod:`nmtwizard.logwatch`,
        no polling). ``before_wait`` runs once before the first sleep (the launcher releases
        its database connection there)."""
        if not 0 <= wait <= defaults.MAX_LOG_WAIT:
            raise InvalidRequest(f"wait must be between 0 and {defaults.MAX_LOG_WAIT:g} seconds")
        chunk = LogChunk(*self.store.read_log_state(task_id, offset))
        if chunk.data or chunk.stopped or wait <= 0:
            return chunk
        deadline = time.monotonic() + wait
        with self.log_watch.watching(task_id) as event:
            if before_wait is not None:
                before_wait()
            while True:
                # Re-read after registering: a line posted before it is not missed.
                chunk = LogChunk(*self.store.read_log_state(task_id, offset))
                remaining = deadline - time.monotonic()
                if chunk.data or chunk.stopped or remaining <= 0:
                    return chunk
                recheck = defaults.LOG_WAIT_RECHECK if self.log_watch.subscribed else 1.0
                event.wait(min(remaining, recheck))
                event.clear()

    @_unavailable
    def put_file(self, task_id: str, name: str, data: bytes) -> None:
        self.store.put_file(task_id, name, data)

    @_unavailable
    def get_file(self, task_id: str, name: str, *, task: dict[str, Any] | None = None) -> bytes:
        """A file of the task, or a declared input: a name the task lists in
        ``content.inputs`` is served only from that source (its parent, which declared the
        output ``launcher:<name>``; a score reading its translation), never from an upload of
        the same name, as nmt-wizard's ``launcher:../<trans>/<name>`` always read the
        translation. Nothing else of another task is ever readable. ``task``: the task as the
        caller already read it (its access check did), to spare a second read."""
        check_file_name(name)
        task = task if task is not None else self.store.get(task_id)
        if name not in ((task.get("content") or {}).get("inputs") or {}):
            return self.store.get_file(task_id, name)
        source = self._input_source(task, name)
        try:
            if source is not None:
                return self.store.get_file(source, name)
        except (FileNotFoundInTask, TaskNotFound):
            pass
        raise FileNotFoundInTask(f"cannot find file {name} for task {task_id}")

    def _input_source(self, task: dict[str, Any], name: str) -> str | None:
        source = task["content"]["inputs"][name]
        if not source or source != task.get("parent"):
            return None
        try:
            outputs = (self.store.get(source).get("content") or {}).get("outputs") or []
        except TaskNotFound:
            return None
        return source if f"{chains.LAUNCHER_STORAGE}{name}" in outputs else None

    @_unavailable
    def list_files(self, task_id: str) -> dict[str, int]:
        self.store.get(task_id)
        return self.store.list_files(task_id)

    @_unavailable
    def post_stat(
        self, task_id: str, *, start_time: float, end_time: float, statistics: dict[str, Any]
    ) -> None:
        """Record the statistics an image posts; ``{}`` is accepted (nmt-wizard images post it
        when a run produced none)."""
        if not isinstance(statistics, dict):
            raise InvalidRequest("statistics: expected an object")
        self.store.set_fields(
            task_id, duration=float(end_time) - float(start_time), statistics=statistics
        )

    # ------------------------------------------------------------------ pools: read

    @_unavailable
    def list_pools(self) -> list[dict[str, Any]]:
        return [
            self.describe_pool(p)
            for p in sorted(self.redis.smembers(self.keys.pools()))
            if self.redis.hexists(self.keys.pool(p), "hosts")
        ]

    @_unavailable
    def describe_pool(self, pool: str) -> dict[str, Any]:
        """Capacity, usage, queue, hosts with their state, workers, leader, pending commands.

        Each host lists its ``tasks`` and, in ``task_slots``, the ``[gpus, cpus]`` each holds
        there (nmt-wizard's per-host usage lines)."""
        from nmtwizard.scheduler import host_states
        from nmtwizard.services.base import HostSpec

        info = self._pool_info(pool)
        specs = [
            HostSpec(h["name"], tuple(h["gpus"]), tuple(map(str, range(h["ncpus"]))))
            for h in json.loads(info["hosts"])
        ]
        states = host_states(self.store, pool, specs)
        slots = self.store.slots(pool, [spec.name for spec in specs])
        now = time.time()
        workers = self.redis.zrangebyscore(
            self.keys.workers(pool), now - defaults.WORKER_BEAT_TTL, "+inf"
        )
        hosts, total, used = [], [0, 0], [0, 0]
        for spec in specs:
            state = states[spec.name]
            used_gpus = len(spec.gpus) - len(state.free_gpus)
            used_cpus = len(spec.cpus) - len(state.free_cpus)
            total[0] += len(spec.gpus)
            total[1] += len(spec.cpus)
            used[0] += used_gpus
            used[1] += used_cpus
            hosts.append(
                {
                    "name": spec.name,
                    "gpus": list(spec.gpus),
                    "ncpus": len(spec.cpus),
                    "used_gpus": used_gpus,
                    "used_cpus": used_cpus,
                    "state": "ok" if state.usable else state.reason.split(":", 1)[0],
                    "reason": state.reason,
                    "reserved_for": state.reserved_for,
                    "tasks": sorted(state.tasks),
                    "task_slots": _slot_counts(*slots[spec.name]),
                }
            )
        active = self.redis.zcard(self.keys.active(pool))
        queued = self.store.queue_length(pool)
        lease = self.redis.get(self.keys.lease(pool))
        host_key_files = json.loads(info.get("host_key_files") or "{}")
        return {
            "name": pool,
            "description": info.get("description", ""),
            "service": info.get("service"),
            "capacity": {"gpus": total[0], "cpus": total[1]},
            "usage": {"gpus": used[0], "cpus": used[1]},
            "queued": queued,
            "active": active,
            "busy": sum(1 for h in hosts if h["state"] != "ok"),
            "hosts": hosts,
            "workers": workers,
            "leader": lease.split(":", 1)[1] if lease else None,
            "state": info.get("state", "unknown"),
            "current_config": info.get("current_config", "base"),
            "config_state": info.get("config_state"),
            "command": info.get("command"),
            "command_state": info.get("command_state"),
            # Added for issue 13: nmt-wizard's "disabled" pools and unusable (ec2, torque) ones.
            "disabled": info.get("disabled") == "1",
            "unusable": info.get("unusable") or None,
            # Added for issue 13: ssh pools, where host keys are checked (paths, no secrets).
            **({"known_hosts": host_key_files} if host_key_files else {}),
        }

    @_unavailable
    def task_entities(self, task_ids: list[str]) -> dict[str, str]:
        """Owner entity of each task that still exists (one round trip)."""
        return {t["task_id"]: t.get("entity") for t in self.store.get_many(task_ids, ["entity"])}

    @_unavailable
    def task_fields(self, task_ids: list[str], fields: list[str]) -> dict[str, dict[str, Any]]:
        """``fields`` of each task that still exists (one round trip). Added for issue 13."""
        return {
            t["task_id"]: {f: t.get(f) for f in fields}
            for t in self.store.get_many(task_ids, fields)
        }

    @_unavailable
    def pool_entities(self, pool: str) -> list[str] | None:
        """Upper-cased entity codes the active configuration lists under ``entities`` (a dict
        as in nmt-wizard HEAD, or a list), or None when it lists none. Added for issue 7."""
        entities = self.configs.get(pool, self.configs.current_name(pool)).get("entities")
        if not entities or not isinstance(entities, dict | list):
            return None
        return sorted({str(code).upper() for code in entities})

    @_unavailable
    def check_pool(self, pool: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        """The active service's verdict on task ``options`` (``service/check``); InvalidRequest
        when it refuses them. Added for issue 7."""
        from nmtwizard.services import ServiceContext, get_service_class

        if options is not None and not isinstance(options, dict):
            raise InvalidRequest("options: expected an object")
        config = self.configs.load(pool)
        service = get_service_class(config.service)(config, ServiceContext(self.redis, self.keys))
        try:
            return service.check(options or {})
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None

    # ------------------------------------------------------------------ pools: control

    def _require_host(self, pool: str, host: str) -> None:
        hosts = json.loads(self._pool_info(pool)["hosts"])
        if host not in {h["name"] for h in hosts}:
            raise HostNotFound(f"pool {pool!r} has no host {host!r}")

    @_unavailable
    def disable_host(self, pool: str, host: str, reason: str = "disabled by an administrator"):
        self._require_host(pool, host)
        self.redis.hset(self.keys.disabled(pool), host, reason[:200])

    @_unavailable
    def enable_host(self, pool: str, host: str) -> None:
        """Clear both an administrator's disable and an automatic quarantine."""
        self._require_host(pool, host)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(self.keys.disabled(pool), host)
        pipe.hdel(self.keys.quarantine(pool), host)
        pipe.execute()

    def _command(self, pool: str, command: str) -> dict[str, Any]:
        self._pool_info(pool)
        self.redis.hset(
            self.keys.pool(pool),
            mapping={"command": command, "command_state": "pending", "command_time": time.time()},
        )
        return {"pool": pool, "command": command, "state": "pending"}

    @_unavailable
    def restart_pool(self, pool: str) -> dict[str, Any]:
        """The worker reloads its configuration and service; tasks are kept."""
        return self._command(pool, "restart")

    @_unavailable
    def stop_pool(self, pool: str) -> dict[str, Any]:
        """The worker exits (code 55, not restarted by the supervisor); tasks stay queued."""
        return self._command(pool, "stop")

    # ------------------------------------------------------------------ pools: configurations

    @_unavailable
    def list_pool_configs(self, pool: str) -> dict[str, Any]:
        return self.configs.names(pool)

    @_unavailable
    def get_pool_config(self, pool: str, name: str) -> dict[str, Any]:
        return self.configs.get(pool, name)

    @_unavailable
    def add_pool_config(self, pool: str, name: str, config: dict | str) -> None:
        self.configs.add(pool, name, config)

    @_unavailable
    def select_pool_config(self, pool: str, name: str) -> dict[str, Any]:
        return self.configs.select(pool, name)

    @_unavailable
    def delete_pool_config(self, pool: str, name: str) -> None:
        self.configs.delete(pool, name)

    @_unavailable
    def get_base_config(self) -> dict[str, Any]:
        """The shared base every pool configuration is merged over. Added for issue 13."""
        return self.configs.base()

    @_unavailable
    def set_base_config(self, config: dict | str) -> None:
        """Replace the shared base (validated against every pool). Added for issue 13."""
        self.configs.set_base(config)


def _slot_counts(gpu_slots: dict[str, str], cpu_slots: dict[str, str]) -> dict[str, list[int]]:
    """``{task: [gpus, cpus]}`` held on one host, from its slot -> task maps."""
    counts: dict[str, list[int]] = {}
    for index, owners in enumerate((gpu_slots, cpu_slots)):
        for task_id in owners.values():
            counts.setdefault(task_id, [0, 0])[index] += 1
    return dict(sorted(counts.items()))


def _check_contract_image(info: dict, pool: str, image: str, exec_mode: bool) -> None:
    """A pool of plain processes runs an image's entrypoint only through a local program it
    maps the image to (``variables.entrypoints``): refuse the others now, not at launch."""
    images = json.loads(info.get("contract_images") or "null")
    if not exec_mode and images is not None and image not in images:
        raise InvalidRequest(
            f"image {image!r} has no local program in pool {pool} (its hosts run processes, "
            f"not Docker): set variables.entrypoints[{image!r}] in its configuration, or "
            "launch with exec_mode: true"
        )


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1024:
        raise InvalidRequest(f"{name} must be an integer between 0 and 1024")
    return value
