"""What the ``local`` and ``ssh`` services share: the task runner protocol, on any transport.

Both services start, poll and stop tasks by running :mod:`nmtwizard.services.runner` on the
task's host (``python3 runner.py start|status|kill``) with one JSON request on stdin. They differ
only in how that script is reached (a local subprocess, or an exec channel over a reused SSH
connection); :class:`RunnerService` holds everything else:

* the **runner request** (:func:`build_start_request`): working directory ``<root>/<task_id>``,
  the command, the task's environment, its files, the registry logins and the callback
  URL/token, sent on the runner's stdin. What is on a command line: in contract mode the
  image's ``-b`` callback URL (and ``--statistics_url``) carries the task token, as the image
  contract requires, so the task's ``/proc/<pid>/cmdline`` shows it (masked in the
  ``COMMAND:`` line the log starts with and in the output, where nmt-wizard-docker images print
  their beat URL); nothing else secret. The storages, credentials included, reach the image on
  its own stdin (contract mode) or in ``STORAGES`` (exec mode); private ``docker.envvar``
  values in the task's environment (a container's: ``-e KEY``, the value in the docker CLI's
  environment). The runner masks every private value and the token in the task's output.
  The process runtime isolates nothing: its tasks run as one Unix user and can read each
  other's ``/proc`` (tokens included); use Docker for a pool shared by several entities;
* **status** (:meth:`RunnerService.status`): reads the host's exit status and the task log from
  the offset already copied, and appends the new bytes to the engine's log with an offset check
  (:class:`LogSync`), so logs and completion work even when callbacks cannot be delivered;
* **terminate**: the runner kills the task's whole process group (and its container);
* **requirements** (:func:`requirement_checks`): the pool's ``requirements`` travel with the
  start request and the runner checks them on the host before a first start; a host that fails
  them answers an error, so the worker quarantines it and re-queues the task (as nmt-wizard).

Two ways to start a task (``LaunchRequest.exec_mode``):

* **the nmt-wizard image contract** (``exec_mode`` false, new tasks' default): the image gets
  nmt-wizard's entrypoint arguments (:func:`entrypoint_arguments`), in its order: ``-s -``
  (the storages, ``<TASK_ID>`` and ``<CALLBACK_URL>`` substituted, on the image's standard
  input as nmt-wizard HEAD gives them: their credentials stay off the command line;
  :func:`storages_input`), ``-g <gpu ids>``, ``-t <task_id>``, ``-b <callback URL>``
  ``-bi <interval>`` (``--statistics_url
  <cb>/task/stat/<id>`` for images with statistics), ``-i <image ref>``, the pool's default
  model storage (``-ms``/``-msr``/``-msw`` from the storages flagged ``default_ms``/
  ``default_msr``/``default_msw``, unless the command gives one), then the command with
  ``${TMP_DIR}`` expanded. The callback URL carries the task's token as HTTP Basic user
  (``http://<token>:x@host``). Under Docker the ``docker run`` line follows nmt-wizard's order
  (:func:`docker_argv`); in the process runtime the pool names the local program that plays
  the image's entrypoint, which sees its GPUs in ``CUDA_VISIBLE_DEVICES`` (host ids);
* **exec mode**: the command as given, the details in environment variables
  (:func:`task_environment`): for images that are not nmt-wizard utilities.

Pool keys (``variables``, the starred ones also per host in ``server_pool``): ``runtime*``
(``docker`` | ``process`` | ``auto``), ``work_dir*`` (or nmt-wizard's ``log_dir``),
``terminate_grace``, ``command_timeout``, ``log_chunk``;

* ``gpu_numbering``: the ``-g`` of the pool's images: ``"0-indexed"`` (default; current
  images: ``0,…,n-1``, no ``-g`` for a CPU task) or ``"1-indexed"`` (nmt-wizard 1.10 and images
  built before April 2020: ``1,…,n``, ``-g 0`` for a CPU task);
  ``gpu_numbering_by_image``: ``{"<image name>": "1-indexed"}`` overrides it per image;
* ``with_nvidia_docker*``: GPUs reach containers through the ``nvidia-docker`` binary (next to
  ``docker``) with ``NV_GPU=<host ids>`` instead of ``docker run --gpus``;
* ``entrypoints*``: for the process runtime, ``{"<image name>": ["python3", "utility.py"]}``:
  the program and leading arguments that play the image's entrypoint. Relative paths there
  (with a ``/``, or after the interpreter a bare name of a file there) resolve against the
  directory the runner starts in: the worker's working directory for
  ``local``, the login's home directory for ``ssh``. An image without one fails its task with
  ``launch_error`` (or run it with ``exec_mode``).

Top level: ``docker`` (``registries``, ``mount``, ``envvar`` with ``specific``, ``path``),
``storages``, ``callback_url``, ``callback_interval``, ``requirements`` (``free_gpu_memory``:
MiB free on each allocated GPU; ``free_disk_space``: ``{path: GB}``). ``[[private:…]]``
values in ``envvar`` reach a container as ``-e KEY`` with the value in the docker CLI's
environment.
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
from urllib.parse import quote

from nmtwizard.exceptions import ConfigError, InfrastructureError, OutcomeUnknown, TaskError
from nmtwizard.services.base import HostSpec, JobState, JobStatus, LaunchRequest, Service

__all__ = [
    "GPU_NUMBERINGS",
    "RUNNER_DIGEST",
    "RUNNER_PATH",
    "RUNNER_SOURCE",
    "RUNTIMES",
    "LogSync",
    "RunnerService",
    "build_start_request",
    "callback_with_token",
    "default_model_storages",
    "docker_argv",
    "entrypoint_arguments",
    "gpu_arguments",
    "gpu_numbering",
    "host_setting",
    "image_reference",
    "registry_logins",
    "requirement_checks",
    "storages_input",
    "task_environment",
]

RUNNER_PATH = Path(__file__).with_name("runner.py")
RUNNER_SOURCE = RUNNER_PATH.read_bytes()
RUNNER_DIGEST = hashlib.sha256(RUNNER_SOURCE).hexdigest()[:12]
RUNTIMES = ("docker", "process", "auto")
GPU_NUMBERINGS = ("0-indexed", "1-indexed")
_DEFAULT_STORAGE_FLAGS = ("default_ms", "default_msr", "default_msw")
_MODEL_STORAGE_FLAGS = {
    "-ms": "--model_storage",
    "-msr": "--model_storage_read",
    "-msw": "--model_storage_write",
}
_TASK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$")
_PRIVATE = re.compile(r"\[\[private:(.*?)\]\]", re.S)
_LOG_CHUNK = 256 * 1024
GPU_CHECK_DEADLINE = 20.0  # seconds for nvidia-smi, at most a third of the command timeout
_MAX_CHUNKS_PER_POLL = 16


# ----------------------------------------------------------------------------- settings


def host_setting(config, host: HostSpec | None, key: str, default: Any = None) -> Any:
    """A ``variables`` key, overridden by the host's own ``server_pool`` entry."""
    if host is not None and key in host.params:
        return host.params[key]
    return config.variables.get(key, default)


def gpu_numbering(config, image: str) -> str:
    """``variables.gpu_numbering_by_image[image]``, else ``variables.gpu_numbering``."""
    by_image = config.variables.get("gpu_numbering_by_image") or {}
    return by_image.get(image) or config.variables.get("gpu_numbering") or GPU_NUMBERINGS[0]


# ----------------------------------------------------------------------------- environment


def _unmark(value: str) -> str:
    """Strip nmt-wizard's ``[[private:…]]`` markers (values reach the task by env only)."""
    return _PRIVATE.sub(r"\1", value)


def _marked_values(data: Any) -> set[str]:
    """Every ``[[private:…]]`` value in ``data`` (strings inside dicts and lists)."""
    if isinstance(data, str):
        return set(_PRIVATE.findall(data))
    items = data.values() if isinstance(data, dict) else data if isinstance(data, list) else ()
    return set().union(*(_marked_values(item) for item in items))


def _substitute(text: str, task_id: str, callback_url: str) -> str:
    return text.replace("<TASK_ID>", task_id).replace("<CALLBACK_URL>", callback_url)


def _pool_envvars(config, image: str) -> list[tuple[str, str]]:
    """``docker.envvar`` in its order, ``specific[image]`` where ``specific`` stands (raw)."""
    pairs = []
    for key, value in ((config.data.get("docker") or {}).get("envvar") or {}).items():
        if isinstance(value, str):
            pairs.append((key, value))
        elif key == "specific" and isinstance(value, dict):
            specific = value.get(image) or {}
            pairs += [(k, v) for k, v in specific.items() if isinstance(v, str)]
    return pairs


def task_environment(
    config, request: LaunchRequest, *, runtime: str, tmp_dir: str
) -> dict[str, str]:
    """The environment of an ``exec_mode`` task: pool ``docker.envvar`` (+ ``specific[image]``),
    then ours.

    Ours win: ``TASK_ID``, ``CUDA_VISIBLE_DEVICES``, ``NVIDIA_VISIBLE_DEVICES``,
    ``SNW_GPU_IDS``, ``NB_CPU``, ``SNW_CPU_IDS``, ``TMP_DIR``, and with a callback URL
    ``CALLBACK_URL``, ``CALLBACK_INTERVAL``, ``TASK_TOKEN``; ``STORAGES`` (JSON) when the pool
    has storages, ``<CALLBACK_URL>`` there carrying the token (the ``launcher`` storage
    authenticates with it; an env var is on no command line). Under Docker the container
    sees its GPUs renumbered from 0, so there ``CUDA_VISIBLE_DEVICES`` is ``0..n-1`` while
    ``NVIDIA_VISIBLE_DEVICES`` keeps the host ids.
    """
    env = {key: _unmark(value) for key, value in _pool_envvars(config, request.image)}
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
    callback_url = _callback_url(config, request)
    if callback_url:
        env["CALLBACK_URL"] = callback_url
        env["CALLBACK_INTERVAL"] = str(_callback_interval(config, request))
        if request.token:
            env["TASK_TOKEN"] = request.token
    storages = config.data.get("storages")
    if storages:
        callback = callback_with_token(callback_url, request.token)
        env["STORAGES"] = _unmark(_substitute(json.dumps(storages), request.task_id, callback))
    return env


def _callback_url(config, request: LaunchRequest) -> str:
    return (request.callback_url or config.callback_url or "").rstrip("/")


def _callback_interval(config, request: LaunchRequest) -> int:
    return int(request.beat_interval or config.data.get("callback_interval") or 60)


def callback_with_token(url: str, token: str | None) -> str:
    """``scheme://<token>:x@host…``, the token marked private (masked in the COMMAND line)."""
    scheme, separator, rest = url.partition("://")
    if not token or not separator:
        return url
    authority, slash, path = rest.partition("/")
    host = authority.rpartition("@")[2]
    return f"{scheme}://[[private:{quote(token, safe='')}]]:x@{host}{slash}{path}"


# ----------------------------------------------------------------------------- entrypoint


def _gives(command: tuple[str, ...], flag: str) -> bool:
    long = _MODEL_STORAGE_FLAGS[flag]
    return any(arg in (flag, long) or arg.startswith(long + "=") for arg in command)


def default_model_storages(storages: dict, command: tuple[str, ...]) -> list[str]:
    """``-ms <s>:`` (or ``-msr``/``-msw``) from the storages flagged ``default_ms``
    (``default_msr``/``default_msw``), for the flags the user command does not give."""
    if _gives(command, "-ms"):
        return []
    flagged = {
        key: next((name for name, s in storages.items() if s.get(key)), None)
        for key in _DEFAULT_STORAGE_FLAGS
    }
    if flagged["default_ms"]:
        if _gives(command, "-msr") and _gives(command, "-msw"):
            return []
        return ["-ms", f"{flagged['default_ms']}:"]
    arguments = []
    for flag, key in (("-msr", "default_msr"), ("-msw", "default_msw")):
        if flagged[key] and not _gives(command, flag):
            arguments += [flag, f"{flagged[key]}:"]
    return arguments


def gpu_arguments(numbering: str, count: int) -> list[str]:
    """``-g``: ``0,…,n-1`` and none for a CPU task, or (``1-indexed``) ``1,…,n`` and ``0``."""
    if numbering == "1-indexed":
        return ["-g", ",".join(str(i) for i in range(1, count + 1)) or "0"]
    return ["-g", ",".join(str(i) for i in range(count))] if count else []


def entrypoint_arguments(config, request: LaunchRequest, *, tmp_dir: str) -> list[str]:
    """The nmt-wizard-docker entrypoint arguments, in nmt-wizard's order, then the command."""
    callback = callback_with_token(_callback_url(config, request), request.token)
    storages = config.data.get("storages") or {}
    arguments = []
    if storages:
        arguments += ["-s", "-"]
    arguments += gpu_arguments(gpu_numbering(config, request.image), len(request.gpus))
    arguments += ["-t", request.task_id]
    if callback:
        arguments += ["-b", callback, "-bi", str(_callback_interval(config, request))]
        if request.support_statistics:
            arguments += ["--statistics_url", f"{callback}/task/stat/{request.task_id}"]
    arguments += ["-i", image_reference(config, request)]
    arguments += default_model_storages(storages, request.command)
    return arguments + _command(request, tmp_dir)


def storages_input(config, request: LaunchRequest) -> dict[str, str]:
    """``{"stdin": <storages JSON>}`` for the image that reads them with ``-s -`` (private
    values marked, for the runner to mask and strip), or ``{}`` for a pool without storages."""
    storages = config.data.get("storages") or {}
    if not storages:
        return {}
    callback = callback_with_token(_callback_url(config, request), request.token)
    return {"stdin": _substitute(json.dumps(storages), request.task_id, callback)}


def _command(request: LaunchRequest, tmp_dir: str) -> list[str]:
    return [arg.replace("${TMP_DIR}", tmp_dir) for arg in request.command]


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
    config,
    request: LaunchRequest,
    *,
    docker: str,
    files_dir: str,
    tmp_dir: str,
    env_arguments: list[str],
    arguments: list[str],
    expose_gpus: bool = True,
) -> list[str]:
    """``docker run`` in nmt-wizard's order (plus a name and label to find the container):
    GPUs, ``-v`` mounts (the task's files at ``tmp_dir`` last), ``env_arguments``, ``NB_CPU``
    and ``--cpuset-cpus``, ``TMP_DIR``, the image, then ``arguments``."""
    argv = [docker, "run", "-i", "--rm", "--name", container_name(request.task_id)]
    argv += ["--label", f"snw.task={request.task_id}"]
    if request.gpus and expose_gpus:
        argv += ["--gpus", '"device={}"'.format(",".join(request.gpus))]
    for mount in (config.data.get("docker") or {}).get("mount") or []:
        argv += ["-v", mount]
    argv += ["-v", f"{files_dir}:{tmp_dir}", *env_arguments]
    if request.cpus:
        argv += ["-e", f"NB_CPU={len(request.cpus)}", "--cpuset-cpus", ",".join(request.cpus)]
    argv += ["-e", f"TMP_DIR={tmp_dir}", image_reference(config, request)]
    return argv + arguments


# ----------------------------------------------------------------------------- the request


def _contract_environment(config, request: LaunchRequest) -> tuple[list[str], dict[str, str]]:
    """Pool env vars of a contract-mode container: ``-e K=V``, or ``-e K`` with the value in
    the docker CLI's environment when it is marked ``[[private:…]]`` (never on a command line)."""
    arguments, env = [], {}
    for key, value in _pool_envvars(config, request.image):
        if _PRIVATE.search(value):
            arguments += ["-e", key]
            env[key] = _unmark(value)
        else:
            arguments += ["-e", f"{key}={value}"]
    return arguments, env


def _docker_start(
    config, request: LaunchRequest, host: HostSpec | None, docker: str, files_dir: str, tmp_dir: str
) -> dict[str, Any]:
    """``argv``, ``env`` (of the docker CLI), ``logins`` and ``container`` of a Docker task.

    GPUs reach the container through ``--gpus``, or through ``nvidia-docker`` and ``NV_GPU``
    (host ids) on a host with ``with_nvidia_docker``.
    """
    run, expose_gpus = docker, True
    if request.gpus and host_setting(config, host, "with_nvidia_docker", False):
        directory, slash, _name = docker.rpartition("/")
        run, expose_gpus = f"{directory}{slash}nvidia-docker", False
    if request.exec_mode:
        env = task_environment(config, request, runtime="docker", tmp_dir=tmp_dir)
        named = sorted(set(env) - {"NB_CPU", "TMP_DIR"})  # those two are given with values
        env_arguments = [arg for key in named for arg in ("-e", key)]
        arguments = _command(request, tmp_dir)
    else:
        env_arguments, env = _contract_environment(config, request)
        arguments = entrypoint_arguments(config, request, tmp_dir=tmp_dir)
    if not expose_gpus:
        env["NV_GPU"] = ",".join(request.gpus)
    argv = docker_argv(
        config,
        request,
        docker=run,
        files_dir=files_dir,
        tmp_dir=tmp_dir,
        env_arguments=env_arguments,
        arguments=arguments,
        expose_gpus=expose_gpus,
    )
    return {
        "argv": argv,
        "env": env,
        "logins": registry_logins(config, request, docker),
        "container": container_name(request.task_id),
        **({} if request.exec_mode else storages_input(config, request)),
    }


def _process_start(
    config, request: LaunchRequest, host: HostSpec | None, tmp_dir: str
) -> dict[str, Any]:
    """``argv`` and ``env`` of a plain process: the command as given (``exec_mode``), or the
    image's local entrypoint program (``variables.entrypoints[image]``) with its arguments.

    ``env`` is what the task adds: the runner lays it over the host user's own ``HOME``,
    ``PATH``, ``LANG`` (and ``LC_ALL``, ``USER``, ``LOGNAME``, ``SHELL``), the same base in
    both modes, and nothing else of its environment (the worker's secrets stay there)."""
    if request.exec_mode:
        if not request.command:
            raise TaskError("a process task needs a command")
        env = task_environment(config, request, runtime="process", tmp_dir=tmp_dir)
        return {"argv": _command(request, tmp_dir), "env": env}
    program = (host_setting(config, host, "entrypoints") or {}).get(request.image)
    if not program:
        raise TaskError(
            f"image {request.image!r} has no local program in pool {config.name}: the process "
            f"runtime needs variables.entrypoints[{request.image!r}] (the program that plays "
            "its entrypoint), or launch with exec_mode: true"
        )
    env = {key: _unmark(value) for key, value in _pool_envvars(config, request.image)}
    env.update(
        NB_CPU=str(len(request.cpus)),
        TMP_DIR=tmp_dir,
        CUDA_VISIBLE_DEVICES=",".join(request.gpus),
    )
    arguments = entrypoint_arguments(config, request, tmp_dir=tmp_dir)
    start = {"argv": [*program, *arguments], "env": env, "program": len(program)}
    return start | storages_input(config, request)


def build_start_request(
    config,
    request: LaunchRequest,
    *,
    runtime: str,
    workdir: str,
    docker: str,
    files: dict[str, bytes],
    host: HostSpec | None = None,
) -> dict[str, Any]:
    """The JSON the runner's ``start`` reads on stdin (secrets included: stdin only).

    ``argv`` may hold ``[[private:…]]`` markers: the runner masks them in the ``COMMAND:``
    line it starts the log with and strips them before running the command. ``secrets`` lists
    every value the task's output must not show: each ``[[private:…]]`` value of the pool
    configuration (``docker.envvar``, storages, registry credentials), which reach the task
    unmarked in its environment, and the task token. ``program``
    counts the leading arguments that name the entrypoint program (the runner resolves
    relative paths there against its own directory).
    """
    files_dir = f"{workdir}/files"
    tmp_dir = f"/root/tmp/{request.task_id}" if runtime == "docker" else files_dir
    spec: dict[str, Any] = {
        "task_id": request.task_id,
        "workdir": workdir,
        "cwd": workdir,
        "files": {name: base64.b64encode(data).decode() for name, data in files.items()},
    }
    if runtime == "docker":
        spec.update(_docker_start(config, request, host, docker, files_dir, tmp_dir))
    else:
        spec.update(_process_start(config, request, host, tmp_dir))
    secrets = _marked_values(config.data) | ({request.token} if request.token else set())
    spec["secrets"] = sorted(secrets)
    callback_url = _callback_url(config, request)
    if callback_url:
        spec["callback"] = {
            "url": callback_url,
            "token": request.token or "",
            "interval": _callback_interval(config, request),
        }
    return spec


# ----------------------------------------------------------------------------- requirements


def requirement_checks(config, request: LaunchRequest, *, deadline: float) -> dict[str, Any]:
    """``{"requirements": ...}`` for the runner's start request, or ``{}`` when there is
    nothing to check: GPU memory is checked only for a task that has GPUs (no ``nvidia-smi``
    for a CPU task), with one ``nvidia-smi`` call the runner kills after ``deadline`` seconds;
    disk space for any task."""
    requirements = config.data.get("requirements") or {}
    checks: dict[str, Any] = {}
    if requirements.get("free_gpu_memory") is not None and request.gpus:
        checks.update(
            gpus=list(request.gpus),
            free_gpu_memory=requirements["free_gpu_memory"],
            deadline=deadline,
        )
    if requirements.get("free_disk_space"):
        checks["free_disk_space"] = requirements["free_disk_space"]
    return {"requirements": checks} if checks else {}


# ----------------------------------------------------------------------------- log copy

_SYNC_SCRIPT = """
local cur = tonumber(redis.call('HGET', KEYS[1], 'host_log_offset') or '0')
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local offset, data, cap, marker = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4]
local channel = ARGV[5]
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
  redis.call('PUBLISH', channel, ARGV[6])
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
        args = [offset, data, self.cap, self.marker, self.keys.log_events(), task_id]
        return int(self._script(keys=keys, args=args))


# ----------------------------------------------------------------------------- the service


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class RunnerService(Service):
    """Base of ``local`` and ``ssh``: task operations through the host-side runner."""

    default_runtime = "docker"
    # Resolve ``runtime: auto`` when the worker publishes the pool (``local``: is docker on its
    # machine); ``ssh`` would need a connection to each host, so auto stays unresolved there.
    resolves_auto_on_worker = False

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
        return host_setting(self.config, host, key, default)

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
        self._check_contract_keys()

    def _check_contract_keys(self) -> None:
        """The keys that shape the entrypoint arguments (see the module docstring)."""
        where, variables = self.config.source, self.config.variables
        numberings = {"gpu_numbering": variables.get("gpu_numbering")}
        by_image = variables.get("gpu_numbering_by_image") or {}
        if not isinstance(by_image, dict):
            raise ConfigError(f"{where}: key variables.gpu_numbering_by_image: expected an object")
        numberings.update({f"gpu_numbering_by_image.{k}": v for k, v in by_image.items()})
        for key, value in numberings.items():
            if value is not None and value not in GPU_NUMBERINGS:
                expected = " or ".join(GPU_NUMBERINGS)
                raise ConfigError(f"{where}: key variables.{key}: expected {expected}")
        for host in [None, *self.hosts.values()]:
            prefix = "variables" if host is None else f"server_pool.{host.name}"
            scope = variables if host is None else host.params
            nvidia = scope.get("with_nvidia_docker", False)
            if not isinstance(nvidia, bool):
                raise ConfigError(f"{where}: key {prefix}.with_nvidia_docker: expected a boolean")
            programs = scope.get("entrypoints") or {}
            if not isinstance(programs, dict):
                raise ConfigError(f"{where}: key {prefix}.entrypoints: expected an object")
            for image, program in programs.items():
                if not (
                    isinstance(program, list)
                    and program
                    and all(isinstance(arg, str) and arg for arg in program)
                ):
                    raise ConfigError(
                        f"{where}: key {prefix}.entrypoints.{image}: expected a program and its "
                        'arguments, e.g. ["python3", "entrypoint.py"]'
                    )
        flags = set()
        for name, storage in (self.config.data.get("storages") or {}).items():
            if not isinstance(storage, dict):
                raise ConfigError(f"{where}: key storages.{name}: expected an object")
            flags |= {key for key in _DEFAULT_STORAGE_FLAGS if storage.get(key)}
        if "default_ms" in flags and flags & {"default_msr", "default_msw"}:
            raise ConfigError(
                f"{where}: key storages: default_ms excludes default_msr and default_msw"
            )

    def contract_images(self, *, on_worker: bool = False) -> list[str] | None:
        """On a pool whose every host runs plain processes, the images some host maps to a
        local program (``entrypoints``); None when a host may run Docker. The launch refuses
        the other images, as the runtime would. ``runtime: auto`` counts as Docker (no
        restriction) unless the pool's worker, on the machine that runs the tasks, resolves it
        (:attr:`resolves_auto_on_worker`)."""
        hosts = list(self.hosts.values())
        if any(self._published_runtime(h, on_worker) != "process" for h in hosts):
            return None
        return sorted({image for h in hosts for image in self._variable(h, "entrypoints") or {}})

    def process_hosts(self) -> list[HostSpec]:
        return [h for h in self.hosts.values() if self._published_runtime(h, True) == "process"]

    def machine_dependent_images(self) -> bool:
        """Whether :meth:`contract_images` depends on the worker's machine (a host of a
        service that resolves ``runtime: auto`` there)."""
        return self.resolves_auto_on_worker and any(
            self._variable(h, "runtime", self.default_runtime) == "auto"
            for h in self.hosts.values()
        )

    def _published_runtime(self, host: HostSpec, on_worker: bool) -> str:
        runtime = self._variable(host, "runtime", self.default_runtime)
        if runtime == "auto" and on_worker and self.resolves_auto_on_worker:
            return self.runtime(host)
        return runtime

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
            host=host,
        )
        deadline = min(GPU_CHECK_DEADLINE, self.command_timeout / 3)  # well within the call's
        spec.update(requirement_checks(self.config, request, deadline=deadline))
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
