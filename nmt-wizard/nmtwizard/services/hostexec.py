"""What the ``local`` and ``ssh`` services share: the task runner protocol, on any transport.

Both services start, poll and stop tasks by running :mod:`nmtwizard.services.runner` on the
task's host (``python3 runner.py start|status|kill``) with one JSON request on stdin. They differ
only in how that script is reached (a local subprocess, or an exec channel over a reused SSH
connection); :class:`RunnerService` holds everything else:

* the **runner request** (:func:`build_start_request`): working directory ``<root>/<task_id>``,
  the command (plain process, or ``docker run`` whose env vars are named with ``-e KEY`` and
  whose values travel in the runner's environment), the task's environment, its files, the
  registry logins and the callback URL/token. Secrets only ever travel on stdin;
* **status** (:meth:`RunnerService.status`): reads the host's exit status and the task log from
  the offset already copied, and appends the new bytes to the engine's log with an offset check
  (:class:`LogSync`), so logs and completion work even when callbacks cannot be delivered;
* **terminate**: the runner kills the task's whole process group (and its container);
* **requirements** (:func:`requirement_checks`): the pool's ``requirements`` travel with the
  start request and the runner checks them on the host before a first start; a host that fails
  them answers an error, so the worker quarantines it and re-queues the task (as nmt-wizard).

Pool keys (``variables``): ``runtime`` (``docker`` | ``process`` | ``auto``; also per host),
``work_dir`` (per host: ``work_dir`` or nmt-wizard's ``log_dir``), ``terminate_grace``,
``command_timeout``, ``log_chunk``; top level ``docker`` (registries, mount, envvar, path),
``storages``, ``callback_url``, ``callback_interval``, ``requirements`` (``free_gpu_memory``:
MiB free on each allocated GPU; ``free_disk_space``: ``{path: GB}``).
"""

from __future__ import annotations

import abc
import base64
import hashlib
import json
import re
import signal
import time
from pathlib import Path
from typing import Any

from nmtwizard.exceptions import ConfigError, InfrastructureError, OutcomeUnknown, TaskError
from nmtwizard.services.base import HostSpec, JobState, JobStatus, LaunchRequest, Service

__all__ = [
    "RUNNER_DIGEST",
    "RUNNER_PATH",
    "RUNNER_SOURCE",
    "RUNTIMES",
    "LogSync",
    "RunnerService",
    "build_start_request",
    "docker_argv",
    "image_reference",
    "registry_logins",
    "requirement_checks",
    "task_environment",
]

RUNNER_PATH = Path(__file__).with_name("runner.py")
RUNNER_SOURCE = RUNNER_PATH.read_bytes()
RUNNER_DIGEST = hashlib.sha256(RUNNER_SOURCE).hexdigest()[:12]
RUNTIMES = ("docker", "process", "auto")
_TASK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$")
_PRIVATE = re.compile(r"\[\[private:(.*?)\]\]", re.S)
_LOG_CHUNK = 256 * 1024
_MAX_CHUNKS_PER_POLL = 16


# ----------------------------------------------------------------------------- environment


def _unmark(value: str) -> str:
    """Strip nmt-wizard's ``[[private:…]]`` markers (values reach the task by env only)."""
    return _PRIVATE.sub(r"\1", value)


def _substitute(text: str, task_id: str, callback_url: str) -> str:
    return text.replace("<TASK_ID>", task_id).replace("<CALLBACK_URL>", callback_url)


def task_environment(
    config, request: LaunchRequest, *, runtime: str, tmp_dir: str
) -> dict[str, str]:
    """The task's environment: pool ``docker.envvar`` (+ ``specific[image]``), then ours.

    Ours win: ``TASK_ID``, ``CUDA_VISIBLE_DEVICES``, ``NVIDIA_VISIBLE_DEVICES``,
    ``SNW_GPU_IDS``, ``NB_CPU``, ``SNW_CPU_IDS``, ``TMP_DIR``, and with a callback URL
    ``CALLBACK_URL``, ``CALLBACK_INTERVAL``, ``TASK_TOKEN``; ``STORAGES`` (JSON) when the pool
    has storages. Under Docker the container sees its GPUs renumbered from 0, so there
    ``CUDA_VISIBLE_DEVICES`` is ``0..n-1`` while ``NVIDIA_VISIBLE_DEVICES`` keeps the host ids.
    """
    envvar = (config.data.get("docker") or {}).get("envvar") or {}
    env = {k: _unmark(v) for k, v in envvar.items() if isinstance(v, str)}
    specific = (envvar.get("specific") or {}).get(request.image) or {}
    env.update({k: _unmark(v) for k, v in specific.items() if isinstance(v, str)})
    gpus = ",".join(request.gpus)
    renumbered = ",".join(str(i) for i in range(len(request.gpus)))
    cuda = renumbered if runtime == "docker" else gpus
    env.update(
        TASK_ID=request.task_id,
        CUDA_VISIBLE_DEVICES=cuda,
        NVIDIA_VISIBLE_DEVICES=gpus or "void",
        SNW_GPU_IDS=gpus,
        NB_CPU=str(len(request.cpus)),
        SNW_CPU_IDS=",".join(request.cpus),
        TMP_DIR=tmp_dir,
    )
    callback_url = request.callback_url or config.callback_url or ""
    if callback_url:
        env["CALLBACK_URL"] = callback_url
        env["CALLBACK_INTERVAL"] = str(_callback_interval(config, request))
        if request.token:
            env["TASK_TOKEN"] = request.token
    storages = config.data.get("storages")
    if storages:
        text = _substitute(json.dumps(storages), request.task_id, callback_url)
        env["STORAGES"] = _unmark(text)
    return env


def _callback_interval(config, request: LaunchRequest) -> int:
    return int(request.beat_interval or config.data.get("callback_interval") or 60)


# ----------------------------------------------------------------------------- docker


def _registry(config, request: LaunchRequest) -> tuple[str | None, dict]:
    """The registry entry of the task: by name, by ``default_for`` prefix, or none."""
    registries = (config.data.get("docker") or {}).get("registries") or {}
    name = request.registry
    if name and name != "auto":
        if name not in registries:
            raise TaskError(f"unknown docker registry {name!r}")
        return name, registries[name]
    for reg_name, registry in sorted(registries.items()):
        for prefix in registry.get("default_for") or []:
            if request.image.startswith(prefix):
                return reg_name, registry
    return None, {}


def image_reference(config, request: LaunchRequest) -> str:
    _name, registry = _registry(config, request)
    uri = (registry.get("uri") or "").rstrip("/")
    image = f"{uri}/{request.image}" if uri else request.image
    return f"{image}:{request.tag}" if request.tag else image


def registry_logins(config, request: LaunchRequest, docker: str) -> list[dict[str, str]]:
    """Login steps for the runner (the password reaches ``docker login`` on its stdin)."""
    _name, registry = _registry(config, request)
    credentials = registry.get("credentials") or {}
    uri = registry.get("uri") or ""
    if registry.get("type") == "aws":
        return [
            {
                "docker": docker,
                "registry": uri,
                "aws_region": registry.get("region") or "",
                "aws_access_key_id": _unmark(credentials.get("AWS_ACCESS_KEY_ID", "")),
                "aws_secret_access_key": _unmark(credentials.get("AWS_SECRET_ACCESS_KEY", "")),
            }
        ]
    if credentials.get("password"):
        return [
            {
                "docker": docker,
                "registry": uri,
                "username": _unmark(credentials.get("username", "")),
                "password": _unmark(credentials["password"]),
            }
        ]
    return []


def container_name(task_id: str) -> str:
    return f"snw-{task_id}"


def docker_argv(
    config, request: LaunchRequest, env: dict[str, str], *, docker: str, files_dir: str
) -> list[str]:
    """``docker run`` for the task; env values are not in it (``-e KEY`` reads the runner's)."""
    argv = [docker, "run", "--rm", "--name", container_name(request.task_id)]
    argv += ["--label", f"snw.task={request.task_id}"]
    if request.gpus:
        argv += ["--gpus", '"device={}"'.format(",".join(request.gpus))]
    if request.cpus:
        argv += ["--cpuset-cpus", ",".join(request.cpus)]
    for mount in (config.data.get("docker") or {}).get("mount") or []:
        argv += ["-v", mount]
    argv += ["-v", f"{files_dir}:{env['TMP_DIR']}"]
    for key in sorted(env):
        argv += ["-e", key]
    argv.append(image_reference(config, request))
    return argv + _command(request, env)


def _command(request: LaunchRequest, env: dict[str, str]) -> list[str]:
    return [arg.replace("${TMP_DIR}", env["TMP_DIR"]) for arg in request.command]


# ----------------------------------------------------------------------------- the request


def build_start_request(
    config,
    request: LaunchRequest,
    *,
    runtime: str,
    workdir: str,
    docker: str,
    files: dict[str, bytes],
) -> dict[str, Any]:
    """The JSON the runner's ``start`` reads on stdin (secrets included: stdin only)."""
    files_dir = f"{workdir}/files"
    tmp_dir = f"/root/tmp/{request.task_id}" if runtime == "docker" else files_dir
    env = task_environment(config, request, runtime=runtime, tmp_dir=tmp_dir)
    spec: dict[str, Any] = {
        "task_id": request.task_id,
        "workdir": workdir,
        "cwd": workdir,
        "env": env,
        "files": {name: base64.b64encode(data).decode() for name, data in files.items()},
    }
    if runtime == "docker":
        spec["argv"] = docker_argv(config, request, env, docker=docker, files_dir=files_dir)
        spec["logins"] = registry_logins(config, request, docker)
        spec["container"] = container_name(request.task_id)
    else:
        if not request.command:
            raise TaskError("a process task needs a command")
        spec["argv"] = _command(request, env)
    if env.get("CALLBACK_URL"):
        spec["callback"] = {
            "url": env["CALLBACK_URL"],
            "token": request.token or "",
            "interval": _callback_interval(config, request),
        }
    return spec


# ----------------------------------------------------------------------------- requirements


def requirement_checks(config, request: LaunchRequest) -> dict[str, Any]:
    """``{"requirements": ...}`` for the runner's start request, or ``{}`` when there is
    nothing to check: GPU memory is checked only for a task that has GPUs (no ``nvidia-smi``
    for a CPU task), disk space for any task."""
    requirements = config.data.get("requirements") or {}
    checks: dict[str, Any] = {}
    if requirements.get("free_gpu_memory") is not None and request.gpus:
        checks.update(gpus=list(request.gpus), free_gpu_memory=requirements["free_gpu_memory"])
    if requirements.get("free_disk_space"):
        checks["free_disk_space"] = requirements["free_disk_space"]
    return {"requirements": checks} if checks else {}


# ----------------------------------------------------------------------------- log copy

_SYNC_SCRIPT = """
local cur = tonumber(redis.call('HGET', KEYS[1], 'host_log_offset') or '0')
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local offset, data, cap, marker = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4]
if offset > cur then return cur end
local stop = offset + #data
if stop <= cur then return cur end
data = string.sub(data, cur - offset + 1)
redis.call('HSET', KEYS[1], 'host_log_offset', stop)
local size = redis.call('STRLEN', KEYS[2])
if size < cap then
  local room = cap - size
  if #data <= room then redis.call('APPEND', KEYS[2], data)
  else redis.call('APPEND', KEYS[2], string.sub(data, 1, room) .. marker) end
end
return stop
"""


class LogSync:
    """Copy a host log into the engine's log exactly once, whoever delivers it first.

    ``task:<id>.host_log_offset`` counts the host bytes already copied; an append names the host
    offset its bytes start at and only the part past the stored offset is kept. Status polls
    use it, and the REST log callback (issue 7) should too (the runner sends ``offset``).
    """

    def __init__(self, redis, keys):
        from nmtwizard import defaults
        from nmtwizard.store import LOG_TRUNCATED_MARKER

        self.redis = redis
        self.keys = keys
        self.cap = defaults.MAX_LOG_SIZE
        self.marker = LOG_TRUNCATED_MARKER
        self._script = redis.register_script(_SYNC_SCRIPT)

    def offset(self, task_id: str) -> int:
        return int(self.redis.hget(self.keys.task(task_id), "host_log_offset") or 0)

    def append(self, task_id: str, offset: int, data: bytes) -> int:
        """Copy ``data`` found at host ``offset``; returns the host offset now copied up to."""
        keys = [self.keys.task(task_id), self.keys.log(task_id)]
        return int(self._script(keys=keys, args=[offset, data, self.cap, self.marker]))


# ----------------------------------------------------------------------------- the service


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class RunnerService(Service):
    """Base of ``local`` and ``ssh``: task operations through the host-side runner."""

    default_runtime = "docker"

    def __init__(self, config, context=None):
        super().__init__(config, context)
        self._files_store = None
        self._log_sync = None

    # -- transport, provided by subclasses -------------------------------------------------

    @abc.abstractmethod
    def call_runner(self, host: HostSpec, action: str, request: dict, timeout: float) -> dict:
        """Run ``runner.py <action>`` on ``host`` with ``request`` on stdin; its JSON answer.

        Transport failures raise :class:`InfrastructureError`.
        """

    @abc.abstractmethod
    def work_root(self, host: HostSpec) -> str:
        """Directory of the host under which each task gets ``<task_id>/``."""

    def docker_available(self, host: HostSpec) -> bool:
        """Used by ``runtime: auto``."""
        return False

    # -- configuration ---------------------------------------------------------------------

    def _variable(self, host: HostSpec | None, key: str, default: Any = None) -> Any:
        if host is not None and key in host.params:
            return host.params[key]
        return self.config.variables.get(key, default)

    def check_config(self) -> None:
        where = self.config.source
        for host in [None, *self.hosts.values()]:
            runtime = self._variable(host, "runtime", self.default_runtime)
            if runtime not in RUNTIMES:
                key = "variables.runtime" if host is None else f"server_pool.{host.name}.runtime"
                raise ConfigError(f"{where}: key {key}: expected one of {', '.join(RUNTIMES)}")
        for key in ("terminate_grace", "command_timeout"):
            value = self.config.variables.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise ConfigError(f"{where}: key variables.{key}: expected a number of seconds")
        interval = self.config.data.get("callback_interval")
        if self.config.callback_url and not interval:
            raise ConfigError(f"{where}: key callback_interval: required with callback_url")

    def runtime(self, host: HostSpec) -> str:
        runtime = self._variable(host, "runtime", self.default_runtime)
        if runtime == "auto":
            return "docker" if self.docker_available(host) else "process"
        return runtime

    def docker_binary(self) -> str:
        path = (self.config.data.get("docker") or {}).get("path")
        return f"{path.rstrip('/')}/docker" if path else "docker"

    def workdir(self, host: HostSpec, task_id: str) -> str:
        if not _TASK_ID.match(task_id):
            raise TaskError(f"task id {task_id!r} cannot name a directory")
        return f"{self.work_root(host).rstrip('/')}/{task_id}"

    @property
    def command_timeout(self) -> float:
        return float(self.config.variables.get("command_timeout", 60))

    def _host(self, name: str) -> HostSpec:
        try:
            return self.hosts[name]
        except KeyError:
            raise InfrastructureError(f"unknown host {name!r}") from None

    def _engine_parts(self):
        if self.context.redis is None:
            raise InfrastructureError(f"service {self.name} has no Redis client")
        if self._log_sync is None:
            from nmtwizard.store import TaskStore

            self._files_store = TaskStore(self.context.redis, self.context.keys.namespace)
            self._log_sync = LogSync(self.context.redis, self.context.keys)
        return self._files_store, self._log_sync

    def _call(self, host: HostSpec, action: str, request: dict) -> dict:
        answer = self.call_runner(host, action, request, self.command_timeout)
        if answer.get("state") == "error":
            raise InfrastructureError(f"{host.name}: runner {action}: {answer.get('error')}")
        return answer

    # -- task operations -------------------------------------------------------------------

    def launch(self, request: LaunchRequest) -> dict[str, Any]:
        host = self._host(request.host)
        store, _sync = self._engine_parts()
        files = {name: store.get_file(request.task_id, name) for name in request.files}
        runtime = self.runtime(host)
        workdir = self.workdir(host, request.task_id)
        spec = build_start_request(
            self.config,
            request,
            runtime=runtime,
            workdir=workdir,
            docker=self.docker_binary(),
            files=files,
        )
        spec.update(requirement_checks(self.config, request))
        answer = self._call(host, "start", spec)
        if answer.get("state") == "unknown":  # its monitor was forked: it may start yet
            raise OutcomeUnknown(f"{host.name}: {answer.get('error') or 'task did not start'}")
        if answer.get("state") == "exited" and answer.get("error"):
            raise TaskError(f"{request.task_id} on {host.name}: {answer['error']}")
        job = {
            "host": host.name,
            "workdir": workdir,
            "runtime": runtime,
            "pid": answer.get("pid"),
            "pgid": answer.get("pgid"),
            "gpus": list(request.gpus),
            "cpus": list(request.cpus),
        }
        if runtime == "docker":
            job["container"] = container_name(request.task_id)
        if request.wait_after_launch and not answer.get("existing"):
            time.sleep(request.wait_after_launch)
            status = self.status(request.task_id, host.name, job)
            if status.state in (JobState.FAILED, JobState.DEAD):
                raise TaskError(f"{request.task_id} exited early: {status.detail}")
        return job

    def status(self, task_id: str, host: str, job: dict | None) -> JobStatus:
        """Poll the host; record why a task ended or why the host cannot be polled.

        ``end_detail`` (set once, with a ``[launcher]`` log line) says how a task ended;
        ``status_error`` holds the last failed poll (the worker ends the task with
        ``lost_connection`` after repeated failures).
        """
        store, _sync = self._engine_parts()
        try:
            result = self._poll(task_id, host, job)
        except InfrastructureError as exc:
            store.annotate(task_id, status_error=f"{time.strftime('%H:%M:%S')} {exc}")
            raise
        if result.state is not JobState.RUNNING:
            first = store.annotate(task_id, only_new=True, end_detail=result.detail)
            if first and result.state is not JobState.COMPLETED:
                store.append_log(task_id, f"\n[launcher] {result.detail}\n")
        return result

    def _poll(self, task_id: str, host: str, job: dict | None) -> JobStatus:
        spec = self._host(host)
        _store, sync = self._engine_parts()
        workdir = (job or {}).get("workdir") or self.workdir(spec, task_id)
        limit = int(self.config.variables.get("log_chunk", _LOG_CHUNK))
        offset = sync.offset(task_id)
        for _ in range(_MAX_CHUNKS_PER_POLL):
            answer = self._call(
                spec, "status", {"workdir": workdir, "offset": offset, "max_bytes": limit}
            )
            chunk = base64.b64decode(answer.get("log") or "")
            if chunk:
                copied = sync.append(task_id, offset, chunk)
                if copied < 0:  # the task record is gone
                    break
                offset = copied
            if not answer.get("more") and len(chunk) < limit:
                break
        return self._job_status(task_id, host, answer)

    @staticmethod
    def _job_status(task_id: str, host: str, answer: dict) -> JobStatus:
        state = answer.get("state")
        if state == "running":
            return JobStatus(JobState.RUNNING)
        if state == "exited":
            code = answer.get("exit_code")
            if answer.get("error"):
                return JobStatus(JobState.FAILED, f"{answer['error']} (exit code {code})")
            if answer.get("signal"):
                name = _signal_name(int(answer["signal"]))
                return JobStatus(JobState.FAILED, f"killed by {name} on {host}")
            if code == 0:
                return JobStatus(JobState.COMPLETED, "exit code 0")
            return JobStatus(JobState.FAILED, f"exit code {code}")
        if state == "lost":
            return JobStatus(JobState.DEAD, f"task lost on {host}: {answer.get('error')}")
        return JobStatus(
            JobState.DEAD,
            f"task {task_id} not found on {host} (never started, or its directory was removed)",
        )

    def terminate(self, task_id: str, host: str, job: dict | None) -> None:
        spec = self._host(host)
        workdir = (job or {}).get("workdir") or self.workdir(spec, task_id)
        grace = float(self.config.variables.get("terminate_grace", 5))
        request = {"workdir": workdir, "grace": grace, "docker": self.docker_binary()}
        self._call(spec, "kill", request)

    def describe(self) -> dict[str, Any]:
        description = super().describe()
        for host in description["hosts"]:
            host["runtime"] = self._variable(
                self.hosts[host["name"]], "runtime", self.default_runtime
            )
        return description
