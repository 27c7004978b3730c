"""Pool configuration: JSON files in ``config_dir`` merged over ``default.json``, validated.

A pool file ``<name>[...].json`` holds nmt-wizard's fields (name, description, service, variables,
docker, storages, cpu_allocation, callback_url, callback_interval, ttl_policy, disabled, and the
service's own keys such as ``variables.server_pool``). Its ``name`` must prefix the file's
basename. Differences from nmt-wizard, on purpose:

* the service is a name from the plugin registry (``"service": "ssh"``); the legacy
  ``"module": "services.ssh"`` is read as ``ssh``; no arbitrary module is ever imported;
  ``services.ec2``, ``services.nova`` and ``services.torque`` load as the ``invalid`` service:
  listed with a description saying why, no capacity, launches refused (nmt-wizard's fallback
  for a pool it cannot build);
* a value whose type differs from ``default.json`` is an error naming the file and the key, not
  silently replaced by the default;
* every error names the file (or the named configuration) and the dotted key.

nmt-wizard's other keys are accepted with their shapes checked: ``disabled`` (true/false or
1/0: the pool takes no task), ``visibility`` (a list of entity codes, unused as in nmt-wizard;
``entities`` says who uses the pool), ``privateKey``/``key_filename``/``pkey`` (SSH
credentials), ``requirements`` (``free_gpu_memory`` MiB per GPU, ``free_disk_space``
``{path: GB}``), ``docker.envvar.specific`` (``{image: {VAR: value}}``) and, per server,
``priority`` (integer), ``only_gpu_task`` (boolean) and ``entities`` (``{ENT: bool}`` or a list).

Named configurations live in Redis (:class:`ConfigLibrary`): ``base`` is the file, others are
added through the API; selecting one bumps a version the worker watches, and the worker reloads
in place, keeping queued and running tasks.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nmtwizard.exceptions import ConfigError, ConfigNotFound, Conflict, PoolNotFound
from nmtwizard.keys import Keys

__all__ = [
    "BASE_CONFIG",
    "ConfigLibrary",
    "PoolConfig",
    "load_all_pools",
    "load_default",
    "load_pool",
    "load_pool_file",
    "merge_config",
    "parse_pool_config",
    "publish_description",
    "ttl_for",
]

BASE_CONFIG = "base"
DEFAULT_FILE = "default.json"
_POOL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
log = logging.getLogger(__name__)
_CONFIG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ENTITY_CODE = re.compile(r"^[A-Za-z]{2}$")
# nmt-wizard plugin modules with no SNW service: such a pool loads as ``invalid``.
_UNSUPPORTED_MODULES = {
    "services.ec2": "AWS EC2 instances",
    "services.nova": "OpenStack Nova instances",
    "services.torque": "a Torque cluster",
}
_REQUIREMENTS = {"free_gpu_memory", "free_disk_space"}


@dataclass
class PoolConfig:
    """A validated, merged pool configuration."""

    name: str
    description: str
    service: str
    data: dict[str, Any]
    source: str
    hosts: list = field(default_factory=list)  # list[HostSpec], filled by the service class
    #: Why the pool cannot run tasks (a module SNW has no service for), else None.
    unusable: str | None = None

    @property
    def disabled(self) -> bool:
        """``"disabled": 1`` or ``true``: the pool is listed but takes no task."""
        return bool(self.data.get("disabled"))

    @property
    def variables(self) -> dict:
        return self.data.get("variables", {})

    @property
    def callback_url(self) -> str | None:
        return self.data.get("callback_url") or None

    @property
    def ttl_policy(self) -> list[dict]:
        return self.data.get("ttl_policy", [])

    @property
    def cpu_allocation(self) -> dict[str, int]:
        return self.data.get("cpu_allocation", {})

    def to_json(self) -> str:
        return json.dumps(self.data, sort_keys=True)


# ----------------------------------------------------------------------------- loading


def _read_json(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return _parse_json(text, str(path))


def _parse_json(text: str, source: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a JSON object")
    return data


def load_default(config_dir: Path) -> dict:
    """``default.json`` of ``config_dir``, or ``{}`` when there is none."""
    path = Path(config_dir) / DEFAULT_FILE
    return _read_json(path) if path.is_file() else {}


def merge_config(base: Any, override: Any, source: str, path: str = "") -> Any:
    """Recursive merge of ``override`` over ``base``; differing types are an error."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            sub = f"{path}.{key}" if path else key
            merged[key] = merge_config(base[key], value, source, sub) if key in base else value
        return merged
    if base is not None and override is not None and _kind(base) != _kind(override):
        raise ConfigError(
            f"{source}: key {path}: expected {_kind(base)} (as in {DEFAULT_FILE}), "
            f"got {_kind(override)}"
        )
    return override


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {dict: "object", list: "array", str: "string"}.get(type(value), type(value).__name__)


class _Checker:
    """Type checks that name the source and the dotted key."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, message: str):
        raise ConfigError(f"{self.source}: key {key}: {message}")

    def get(self, data: dict, key: str, kind, *, required=False, default=None, dotted=None):
        dotted = dotted or key
        if key not in data or data[key] is None or (required and data[key] == ""):
            if required:
                self.fail(dotted, "is required")
            return default
        value = data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            self.fail(dotted, f"expected {kinds[0].__name__}, got boolean")
        if not isinstance(value, kinds):
            self.fail(dotted, f"expected {kinds[0].__name__}, got {_kind(value)}")
        return value

    def non_negative_int(self, data: dict, key: str, dotted: str, default=None, minimum=0):
        value = self.get(data, key, int, default=default, dotted=dotted)
        if value is not None and value < minimum:
            self.fail(dotted, f"must be at least {minimum}")
        return value


def parse_pool_config(data: dict, source: str, default: dict | None = None) -> PoolConfig:
    """Merge ``data`` over ``default``, validate common and service keys, return a PoolConfig."""
    from nmtwizard.services import get_service_class  # the registry imports plugins

    merged = merge_config(default or {}, data, source)
    check = _Checker(source)
    name = check.get(merged, "name", str, required=True)
    if not _POOL_NAME.match(name):
        check.fail("name", "letters, digits, '_' and '-' only (at most 64)")
    description = check.get(merged, "description", str, required=True)
    service = check.get(merged, "service", str)
    module = check.get(merged, "module", str)
    unusable = None
    if service is None and module in _UNSUPPORTED_MODULES:
        service = "invalid"
        unusable = (
            f"module {module} ({_UNSUPPORTED_MODULES[module]}) has no SNW service; "
            "use services.ssh (or service ssh, local)"
        )
        description = f"**INVALID CONFIG: {unusable}"
    elif service is None and module is not None:
        service = module.rsplit(".", 1)[-1]
    if service is None:
        check.fail("service", "is required (a registered service name such as 'fake' or 'ssh')")
    check.get(merged, "variables", dict, default={})
    docker = check.get(merged, "docker", dict, default={})
    check.get(docker, "registries", dict, dotted="docker.registries")
    mounts = check.get(docker, "mount", list, dotted="docker.mount") or []
    for i, mount in enumerate(mounts):
        if not isinstance(mount, str) or ":" not in mount:
            check.fail(f"docker.mount[{i}]", "expected 'host_path:container_path'")
    envvar = check.get(docker, "envvar", dict, dotted="docker.envvar") or {}
    _check_specific_envvar(check, envvar)
    check.get(merged, "storages", dict)
    for kind, count in (check.get(merged, "cpu_allocation", dict) or {}).items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            check.fail(f"cpu_allocation.{kind}", "expected a non-negative integer")
    check.get(merged, "callback_url", str)
    check.non_negative_int(merged, "callback_interval", "callback_interval", minimum=1)
    if check.get(merged, "disabled", (bool, int)) not in (None, True, False):
        check.fail("disabled", "expected true/false (or 1/0)")  # 1 == True, 0 == False
    _check_nmtwizard_keys(check, merged)
    for i, rule in enumerate(check.get(merged, "ttl_policy", list) or []):
        where = f"ttl_policy[{i}]"
        if not isinstance(rule, dict):
            check.fail(where, "expected an object {pattern, ttl}")
        check.get(rule, "pattern", dict, required=True, dotted=f"{where}.pattern")
        check.non_negative_int(rule, "ttl", f"{where}.ttl")
        if "ttl" not in rule:
            check.fail(f"{where}.ttl", "is required")
    try:
        service_class = get_service_class(service)
    except KeyError:
        check.fail("service", f"unknown service {service!r}")
    config = PoolConfig(name, description, service, merged, source, unusable=unusable)
    config.hosts = service_class.parse_hosts(config)
    service_class(config).check_config()  # no I/O: safe wherever a configuration is parsed
    return config


def _check_specific_envvar(check: _Checker, envvar: dict) -> None:
    """``docker.envvar.specific``: ``{image: {VAR: value}}``, variables given to that image only."""
    specific = check.get(envvar, "specific", dict, dotted="docker.envvar.specific") or {}
    for image, variables in specific.items():
        where = f"docker.envvar.specific.{image}"
        check.get(specific, image, dict, dotted=where)
        for variable, value in (variables or {}).items():
            if isinstance(value, dict | list):
                check.fail(f"{where}.{variable}", f"expected a string, got {_kind(value)}")


def _check_nmtwizard_keys(check: _Checker, merged: dict) -> None:
    """Shapes of nmt-wizard's keys SNW acts on elsewhere (SSH service, scheduler, runner)."""
    for i, code in enumerate(check.get(merged, "visibility", list) or []):
        if not isinstance(code, str) or not _ENTITY_CODE.match(code):
            check.fail(f"visibility[{i}]", "expected an entity code (two letters)")
    for key in ("privateKey", "key_filename", "pkey"):
        if check.get(merged, key, str) == "":
            check.fail(key, "must not be empty")
    requirements = check.get(merged, "requirements", dict) or {}
    unknown = sorted(set(requirements) - _REQUIREMENTS)
    if unknown:
        check.fail(f"requirements.{unknown[0]}", "unknown (free_gpu_memory, free_disk_space)")
    check.non_negative_int(requirements, "free_gpu_memory", "requirements.free_gpu_memory")
    disk = requirements.get("free_disk_space")
    if disk is not None and not isinstance(disk, dict):
        check.fail(
            "requirements.free_disk_space",
            f'expected {{"<path on the host>": GB}}, got {_kind(disk)}',
        )
    for path, size in (disk or {}).items():
        where = f"requirements.free_disk_space.{path}"
        if not path:
            check.fail(where, "expected a path on the host")
        if isinstance(size, bool) or not isinstance(size, int | float) or size < 0:
            check.fail(where, "expected a non-negative number of GB")
    servers = merged.get("variables", {}).get("server_pool")
    for i, server in enumerate(servers if isinstance(servers, list) else []):
        if isinstance(server, dict):
            _check_server_steering(check, server, f"variables.server_pool[{i}]")


def _check_server_steering(check: _Checker, server: dict, prefix: str) -> None:
    """Per-server ``priority``, ``only_gpu_task`` and ``entities`` (nmt-wizard HEAD)."""
    check.get(server, "priority", int, dotted=f"{prefix}.priority")
    check.get(server, "only_gpu_task", bool, dotted=f"{prefix}.only_gpu_task")
    entities = check.get(server, "entities", (dict, list), dotted=f"{prefix}.entities")
    for code in entities or []:
        if not isinstance(code, str) or not _ENTITY_CODE.match(code):
            check.fail(f"{prefix}.entities", f"{code!r} is not an entity code (two letters)")
        if isinstance(entities, dict) and not isinstance(entities[code], bool):
            check.fail(f"{prefix}.entities.{code}", "expected true or false")


def load_pool_file(path: Path, default: dict | None = None) -> PoolConfig:
    """Load one pool file; its ``name`` must prefix the basename (nmt-wizard's check)."""
    path = Path(path)
    config = parse_pool_config(_read_json(path), str(path), default)
    if not path.stem.startswith(config.name):
        raise ConfigError(f"{path}: key name: {config.name!r} must prefix the file name")
    return config


def _pool_files(config_dir: Path) -> list[Path]:
    return sorted(p for p in Path(config_dir).glob("*.json") if p.name != DEFAULT_FILE)


def load_pool(config_dir: Path, pool: str) -> PoolConfig:
    """The file configuration of ``pool`` (``<pool>.json``, else the file whose name matches)."""
    default = load_default(config_dir)
    exact = Path(config_dir) / f"{pool}.json"
    if exact.is_file():
        return load_pool_file(exact, default)
    for path in _pool_files(config_dir):
        if path.stem.startswith(pool):
            data = _read_json(path)
            if data.get("name") == pool:
                return load_pool_file(path, default)
    raise PoolNotFound(f"no configuration file for pool {pool!r} in {config_dir}")


def load_all_pools(config_dir: Path) -> dict[str, PoolConfig]:
    """Every pool file of ``config_dir``, validated; the first error stops the load."""
    default = load_default(config_dir)
    pools = {}
    for path in _pool_files(config_dir):
        config = load_pool_file(path, default)
        if config.name in pools:
            raise ConfigError(f"{path}: key name: pool {config.name!r} is defined twice")
        pools[config.name] = config
    return pools


def ttl_for(policy: list[dict], task: dict[str, Any]) -> int | None:
    """Seconds a stopped task is kept: the first rule whose pattern equals the task's fields."""
    for rule in policy:
        pattern = rule.get("pattern", {})
        if all(str(task.get(k)) == str(v) for k, v in pattern.items()):
            return rule.get("ttl") or None
    return None


# ----------------------------------------------------------------------------- named configs


class ConfigLibrary:
    """Named configurations of a pool, in Redis; ``base`` mirrors the pool file.

    The pool hash holds ``current_config`` (selected name), ``config_version`` (bumped on every
    select, watched by the worker) and ``default_config`` (the JSON of the shared base in force,
    :meth:`publish_default`, so named configs merge over it).
    """

    def __init__(self, client, keys: Keys):
        self.redis = client
        self.keys = keys

    def publish_base(self, config: PoolConfig) -> None:
        """Store the file configuration as ``base``; select it when nothing is selected. The
        pool merges over the shared base in force (:meth:`publish_default` comes first), read
        and copied atomically against a replacement (:meth:`set_base`)."""

        def publish(pipe) -> None:
            default = pipe.get(self.keys.base_config()) or "{}"
            pipe.multi()
            pipe.sadd(self.keys.pools(), config.name)
            pipe.hset(self.keys.configs(config.name), BASE_CONFIG, json.dumps(config.data))
            pipe.hset(self.keys.pool(config.name), "default_config", default)
            pipe.hsetnx(self.keys.pool(config.name), "current_config", BASE_CONFIG)
            pipe.hsetnx(self.keys.pool(config.name), "config_version", 0)

        self.redis.transaction(publish, self.keys.base_config())

    def _require_pool(self, pool: str) -> None:
        if not self.redis.sismember(self.keys.pools(), pool):
            raise PoolNotFound(f"unknown pool {pool!r}")

    def names(self, pool: str) -> dict[str, Any]:
        """``{"current": name, "configs": [names]}``."""
        self._require_pool(pool)
        names = sorted(self.redis.hkeys(self.keys.configs(pool)))
        return {"current": self.current_name(pool), "configs": names}

    def current_name(self, pool: str) -> str:
        return self.redis.hget(self.keys.pool(pool), "current_config") or BASE_CONFIG

    def version(self, pool: str) -> int:
        return int(self.redis.hget(self.keys.pool(pool), "config_version") or 0)

    def get(self, pool: str, name: str) -> dict:
        self._require_pool(pool)
        text = self.redis.hget(self.keys.configs(pool), name)
        if text is None:
            raise ConfigNotFound(f"pool {pool!r} has no configuration {name!r}")
        return json.loads(text)

    def load(self, pool: str, name: str | None = None) -> PoolConfig:
        """Validate and return a named configuration (the selected one by default)."""
        name = name or self.current_name(pool)
        data = self.get(pool, name)
        default = json.loads(self.redis.hget(self.keys.pool(pool), "default_config") or "{}")
        config = parse_pool_config(data, f"configuration {name!r} of pool {pool!r}", default)
        if config.name != pool:
            raise ConfigError(
                f"configuration {name!r} of pool {pool!r}: key name: must be {pool!r}"
            )
        return config

    def add(self, pool: str, name: str, data: dict | str) -> None:
        """Add or replace a named configuration after validating it (``base`` is read-only)."""
        self._require_pool(pool)
        if not _CONFIG_NAME.match(name):
            raise ConfigError(f"configuration name {name!r}: letters, digits, '_', '.', '-'")
        if name == BASE_CONFIG:
            raise Conflict("the base configuration mirrors the pool file and cannot be replaced")
        if isinstance(data, str):
            data = _parse_json(data, f"configuration {name!r} of pool {pool!r}")
        default = json.loads(self.redis.hget(self.keys.pool(pool), "default_config") or "{}")
        config = parse_pool_config(data, f"configuration {name!r} of pool {pool!r}", default)
        if config.name != pool:
            raise ConfigError(
                f"configuration {name!r} of pool {pool!r}: key name: must be {pool!r}"
            )
        self.redis.hset(self.keys.configs(pool), name, json.dumps(data))

    def select(self, pool: str, name: str) -> dict[str, Any]:
        """Make ``name`` current; the worker reloads it at its next tick without losing tasks."""
        self.load(pool, name)  # validates before anything changes
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keys.pool(pool), mapping={"current_config": name, "config_state": "pending"})
        pipe.hset(self.keys.pool(pool), "config_requested_time", time.time())
        pipe.hincrby(self.keys.pool(pool), "config_version", 1)
        pipe.execute()
        return {"pool": pool, "current": name, "state": "pending"}

    def base(self) -> dict:
        """The shared configuration every pool's is merged over (``default.json``; nmt-wizard
        HEAD's ``_base``)."""
        return json.loads(self.redis.get(self.keys.base_config()) or "{}")

    def publish_default(self, default: dict) -> None:
        """Record ``default.json`` as read at a process start (launcher or worker) and set the
        shared base in force: a posted one (:meth:`set_base`) survives as long as the file's
        content is the one it was posted over; once the file changed, the file wins and the
        posted base is dropped. Key order and layout of the file do not count."""
        file_text = json.dumps(default, sort_keys=True)  # compared: key order does not count

        def publish(pipe) -> bool:
            posted = pipe.hgetall(self.keys.base_posted())
            kept = bool(posted) and posted.get("file") == file_text
            pipe.multi()
            pipe.set(self.keys.base_file(), file_text)
            # The file's own key order stays (storages reach images as written).
            pipe.set(self.keys.base_config(), posted["config"] if kept else json.dumps(default))
            if not kept:
                pipe.delete(self.keys.base_posted())
            return bool(posted) and not kept

        dropped = self.redis.transaction(
            publish, self.keys.base_posted(), self.keys.base_file(), value_from_callable=True
        )
        if dropped:
            log.warning("default.json changed since a base configuration was posted: it applies")

    def set_base(self, data: dict | str) -> None:
        """Replace the shared base after checking that every pool's selected configuration
        stays valid over it, atomically: a configuration added or selected meanwhile makes it
        check again. Named configurations added or selected from now on merge over it; each
        ``base`` configuration is its file merged over ``default.json``. The posted base
        outlives process starts until ``default.json`` changes (:meth:`publish_default`)."""
        if isinstance(data, str):
            data = _parse_json(data, "the base configuration")
        if not isinstance(data, dict):
            raise ConfigError("the base configuration: the top level must be a JSON object")
        text = json.dumps(data)

        def replace(pipe) -> None:
            pools = sorted(pipe.smembers(self.keys.pools()))
            for pool in pools:
                pipe.watch(self.keys.pool(pool), self.keys.configs(pool))
            for pool in pools:
                name = pipe.hget(self.keys.pool(pool), "current_config") or BASE_CONFIG
                stored = pipe.hget(self.keys.configs(pool), name)
                if stored is None:
                    raise ConfigNotFound(f"pool {pool!r} has no configuration {name!r}")
                where = f"configuration {name!r} of pool {pool!r}"
                parse_pool_config(json.loads(stored), where, data)
            posted = {"config": text, "file": pipe.get(self.keys.base_file()) or ""}
            pipe.multi()
            pipe.set(self.keys.base_config(), text)
            pipe.hset(self.keys.base_posted(), mapping=posted)
            for pool in pools:
                pipe.hset(self.keys.pool(pool), "default_config", text)

        self.redis.transaction(replace, self.keys.pools(), self.keys.base_file())

    def delete(self, pool: str, name: str) -> None:
        self._require_pool(pool)
        if name == BASE_CONFIG:
            raise Conflict("the base configuration cannot be deleted")
        if name == self.current_name(pool):
            raise Conflict(f"configuration {name!r} is selected; select another one first")
        if not self.redis.hdel(self.keys.configs(pool), name):
            raise ConfigNotFound(f"pool {pool!r} has no configuration {name!r}")


def publish_description(client, keys: Keys, config: PoolConfig, *, on_worker: bool = False) -> None:
    """Write what the API needs about the active configuration into ``pool:<name>``.

    ``contract_images`` may depend on the machine that runs the tasks (``runtime: auto`` of a
    ``local`` pool): only the pool's worker (``on_worker``) publishes it then; the launcher,
    which may run elsewhere, writes it unresolved (no restriction) only where no worker has."""
    from nmtwizard.services import get_service_class  # the registry imports plugins

    hosts = [host.describe() for host in config.hosts]
    service = get_service_class(config.service)(config)
    images = json.dumps(service.contract_images(on_worker=on_worker))
    mine = on_worker or not service.machine_dependent_images()
    pipe = client.pipeline(transaction=True)
    pipe.hset(
        keys.pool(config.name),
        mapping={
            "description": config.description,
            "service": config.service,
            "hosts": json.dumps(hosts),
            "ttl_policy": json.dumps(config.ttl_policy),
            "cpu_allocation": json.dumps(config.cpu_allocation),
            "registries": json.dumps(sorted(config.data.get("docker", {}).get("registries") or {})),
            "registry_defaults": json.dumps(_registry_defaults(config)),
            "callback_url": config.callback_url or "",
            "callback_interval": config.data.get("callback_interval") or 0,
            **({"contract_images": images} if mine else {}),
            "host_key_files": json.dumps(service.host_key_files()),
            "disabled": int(config.disabled),
            "unusable": config.unusable or "",
        },
    )
    pipe.hsetnx(keys.pool(config.name), "contract_images", images)
    pipe.execute()


def _registry_defaults(config: PoolConfig) -> dict[str, str]:
    """``repository -> registry`` from ``docker.registries.*.default_for`` (for ``auto``)."""
    result = {}
    for name, registry in (config.data.get("docker", {}).get("registries") or {}).items():
        for repository in (
            (registry or {}).get("default_for", []) if isinstance(registry, dict) else []
        ):
            result.setdefault(repository, name)
    return result
