"""The service interface every compute backend implements (fake, local, ssh, ...).

A service knows a pool's hosts and runs tasks on them. The worker calls it only through the
``safe_*`` wrappers of this base class, which turn unexpected exceptions into the two errors the
worker understands:

* :class:`~nmtwizard.exceptions.InfrastructureError`: the host is unusable (OSError, timeouts,
  connection failures...). The worker quarantines the host and re-queues the task.
* :class:`~nmtwizard.exceptions.TaskError`: the task itself failed to start: ``launch_error``.

Crash-only contract: ``launch`` is **idempotent on the task id** (a second call for a task that
already started returns the existing job instead of starting another) and ``terminate`` and
``status`` accept ``job=None`` and then find the task by its id. A worker killed during a launch
relies on this to never launch a task twice.
"""

from __future__ import annotations

import abc
import enum
import logging
from dataclasses import dataclass, field
from typing import Any

from nmtwizard.exceptions import ConfigError, InfrastructureError, ServiceError, TaskError

__all__ = [
    "HostSpec",
    "JobState",
    "JobStatus",
    "LaunchRequest",
    "Service",
    "ServiceContext",
    "parse_server_pool",
]

log = logging.getLogger(__name__)

#: Per-server keys that steer allocation (see :mod:`nmtwizard.scheduler`); published with the
#: host so a launch no server would accept is refused at once.
_STEERING_KEYS = ("entities", "only_gpu_task", "priority")


@dataclass(frozen=True)
class HostSpec:
    """One host of a pool: explicit GPU ids and CPU ids, plus service-specific parameters."""

    name: str
    gpus: tuple[str, ...]
    cpus: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def describe(self) -> dict[str, Any]:
        described = {"name": self.name, "gpus": list(self.gpus), "ncpus": len(self.cpus)}
        described.update({k: self.params[k] for k in _STEERING_KEYS if k in self.params})
        return described


@dataclass(frozen=True)
class LaunchRequest:
    """Everything a service needs to start one task on one host."""

    task_id: str
    host: str
    gpus: tuple[str, ...]
    cpus: tuple[str, ...]
    image: str
    tag: str
    command: tuple[str, ...]
    registry: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    callback_url: str | None = None
    token: str | None = None
    beat_interval: int | None = None
    wait_after_launch: float = 0.0
    #: Run ``command`` as given (details in environment variables); false: the nmt-wizard
    #: image contract (entrypoint arguments before the command).
    exec_mode: bool = True
    #: The image posts statistics: pass it ``--statistics_url``.
    support_statistics: bool = False


class JobState(enum.StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"  # exited 0
    FAILED = "failed"  # exited non-zero
    DEAD = "dead"  # gone without an exit code


@dataclass(frozen=True)
class JobStatus:
    state: JobState
    detail: str = ""


@dataclass(frozen=True)
class ServiceContext:
    """What the worker gives a service: the Redis client and key builders (for shared state)."""

    redis: Any = None
    keys: Any = None


def parse_server_pool(config, key: str = "server_pool") -> list[HostSpec]:
    """Read ``variables.<key>``: ``[{name, gpus: [ids], ncpus | cpus: [ids], ...}]``.

    GPU ids are explicit (``"gpus": [0, 1, 3]`` uses those devices); nmt-wizard only used the
    list's length. Errors name the source and the key.
    """
    where = config.source
    servers = config.variables.get(key)
    if not isinstance(servers, list) or not servers:
        raise ConfigError(f"{where}: key variables.{key}: expected a non-empty list of hosts")
    hosts, seen = [], set()
    for i, server in enumerate(servers):
        prefix = f"variables.{key}[{i}]"
        if not isinstance(server, dict):
            raise ConfigError(f"{where}: key {prefix}: expected an object")
        name = server.get("name") or server.get("host")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: key {prefix}.name: expected a host name")
        port = server.get("port", 22)
        if "name" not in server and port != 22:
            name = f"{name}:{port}"
        if name in seen:
            raise ConfigError(f"{where}: key {prefix}.name: host {name!r} listed twice")
        seen.add(name)
        gpus = server.get("gpus", [])
        if not isinstance(gpus, list) or not all(
            isinstance(g, int | str) and not isinstance(g, bool) for g in gpus
        ):
            raise ConfigError(f"{where}: key {prefix}.gpus: expected a list of GPU ids")
        if len({str(g) for g in gpus}) != len(gpus):
            raise ConfigError(f"{where}: key {prefix}.gpus: GPU ids must be unique")
        cpus = server.get("cpus")
        ncpus = server.get("ncpus")
        if ncpus is not None and (isinstance(ncpus, bool) or not isinstance(ncpus, int)):
            raise ConfigError(f"{where}: key {prefix}.ncpus: expected an integer")
        if cpus is None:
            cpus = list(range(ncpus or 0))
        elif not isinstance(cpus, list):
            raise ConfigError(f"{where}: key {prefix}.cpus: expected a list of CPU ids")
        elif ncpus is not None and ncpus != len(cpus):
            raise ConfigError(f"{where}: key {prefix}.ncpus: disagrees with the cpus list")
        if not cpus:
            raise ConfigError(f"{where}: key {prefix}.ncpus: a host needs at least one CPU")
        params = {k: v for k, v in server.items() if k not in ("name", "gpus", "cpus", "ncpus")}
        hosts.append(HostSpec(name, tuple(map(str, gpus)), tuple(map(str, cpus)), params))
    return hosts


class Service(abc.ABC):
    """Base class of the service plugins; subclasses register with ``@register("name")``."""

    name = "abstract"
    #: Its tasks report to the launcher themselves (log, beats, end), given a callback URL; the
    #: worker then polls them less often.
    calls_back = True

    def __init__(self, config, context: ServiceContext | None = None):
        self.config = config
        self.context = context or ServiceContext()
        self.hosts = {host.name: host for host in config.hosts}

    # -- configuration ---------------------------------------------------------------------

    @classmethod
    def parse_hosts(cls, config) -> list[HostSpec]:
        """Hosts of the pool from its configuration; raise ConfigError naming the key."""
        return parse_server_pool(config)

    def check_config(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Checks of the configuration alone (no file, host or network), run whenever a pool
        configuration is parsed: adding or selecting one no worker could start with fails."""

    def validate(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Checks of this machine (files, clients), once at worker start: fail loudly here."""

    # -- description -----------------------------------------------------------------------

    def resources(self) -> list[HostSpec]:
        return list(self.hosts.values())

    def describe(self) -> dict[str, Any]:
        return {
            "service": self.name,
            "description": self.config.description,
            "hosts": [host.describe() for host in self.resources()],
        }

    def contract_images(self, *, on_worker: bool = False) -> list[str] | None:
        """The images a task not in exec mode may name here (launches of others are refused),
        or None: any image. ``on_worker``: asked by the pool's worker, on the machine that
        runs its tasks (the launcher may run elsewhere)."""
        return None

    def process_hosts(self) -> list[HostSpec]:
        """The hosts whose tasks run as plain processes of one Unix user, as far as the worker
        knows (no isolation between their tasks)."""
        return []

    def machine_dependent_images(self) -> bool:
        """Whether :meth:`contract_images` needs the worker's machine to be answered."""
        return False

    def host_key_files(self) -> dict[str, str]:
        """Host name -> the known_hosts file its SSH host key is checked against (shown by
        ``service/describe``; paths only); empty for services that do not use SSH."""
        return {}

    def hosts_for_options(self, options: dict[str, Any]) -> list[str] | None:
        """Hosts a task may run on given its options (``server``: a name or a list), or all."""
        server = (options or {}).get("server")
        if server is None:
            return None
        names = [server] if isinstance(server, str) else list(server)
        unknown = [n for n in names if n not in self.hosts]
        if unknown:
            raise ValueError(f"unknown server(s) {', '.join(map(str, unknown))}")
        return names

    def check(self, options: dict[str, Any]) -> dict[str, Any]:
        """Validate task options for this service; return details. Raise ValueError if wrong."""
        return {"hosts": self.hosts_for_options(options) or sorted(self.hosts)}

    # -- task operations (implemented by plugins) ------------------------------------------

    @abc.abstractmethod
    def launch(self, request: LaunchRequest) -> dict[str, Any]:
        """Start the task; return a JSON-serialisable job. Idempotent on ``request.task_id``."""

    @abc.abstractmethod
    def status(self, task_id: str, host: str, job: dict | None) -> JobStatus:
        """Where the task stands on its host."""

    @abc.abstractmethod
    def terminate(self, task_id: str, host: str, job: dict | None) -> None:
        """Stop the task if it runs; a no-op when it is gone. ``job`` may be None."""

    # -- error capture shared by every plugin ----------------------------------------------

    def safe_launch(self, request: LaunchRequest) -> dict[str, Any]:
        return self._guard("launch", TaskError, self.launch, request)

    def safe_status(self, task_id: str, host: str, job: dict | None) -> JobStatus:
        return self._guard("status", InfrastructureError, self.status, task_id, host, job)

    def safe_terminate(self, task_id: str, host: str, job: dict | None) -> None:
        return self._guard("terminate", InfrastructureError, self.terminate, task_id, host, job)

    def _guard(self, what: str, fallback: type[ServiceError], func, *args):
        try:
            return func(*args)
        except ServiceError:
            raise
        except (OSError, TimeoutError, ConnectionError) as exc:
            raise InfrastructureError(f"{what}: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            log.exception("service %s: %s failed", self.name, what)
            raise fallback(f"{what}: {type(exc).__name__}: {exc}") from exc
