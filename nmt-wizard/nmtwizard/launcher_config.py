"""The one configuration read by the launcher and by every worker.

Values come from the environment and, when ``LAUNCHER_CONFIG`` names one, from an ini file with
the sections of nmt-wizard's ``settings.ini`` (``[default]``, ``[redis]``) plus ``[database]``.
The environment always wins over the file. Any wrong value stops start-up with a
:class:`~nmtwizard.exceptions.ConfigError` naming the key and where it came from.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from nmtwizard.exceptions import ConfigError

__all__ = ["LOG_LEVELS", "LauncherConfig", "load_launcher_config"]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Known keys per section; anything else in the file is a typo worth stopping for.
_INI_KEYS = {
    "default": {"config_dir", "log_level", "refresh_counter", "quarantine_time", "callback_url"},
    "redis": {"host", "port", "db", "password"},
    "database": {"url"},
}


@dataclass(frozen=True)
class LauncherConfig:
    """Resolved settings: environment over ini file over code defaults."""

    config_dir: Path | None
    log_level: str
    refresh_counter: int
    quarantine_time: int
    redis_url: str | None
    database_url: str | None
    callback_url: str | None = None
    ini_file: Path | None = None


class _Source:
    """Looks a key up in the environment first, then in the ini file, and names the origin."""

    def __init__(
        self,
        environ: Mapping[str, str],
        parser: configparser.ConfigParser | None,
        ini_file: Path | None,
    ):
        self.environ = environ
        self.parser = parser
        self.ini_file = ini_file

    def get(self, env_key: str, section: str | None = None, key: str | None = None):
        """Return ``(value, origin)`` or ``(None, None)`` when neither source has it."""
        value = self.environ.get(env_key)
        if value not in (None, ""):
            return value, f"environment variable {env_key}"
        if self.parser is not None and section and self.parser.has_option(section, key):
            return self.parser.get(section, key), f"[{section}] {key} in {self.ini_file}"
        return None, None

    def get_int(self, env_key, section, key, default: int, minimum: int = 0) -> int:
        raw, origin = self.get(env_key, section, key)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{origin}: expected an integer, got {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{origin}: must be at least {minimum}, got {value}")
        return value


def _read_ini(path: Path) -> configparser.ConfigParser:
    if not path.is_file():
        raise ConfigError(f"LAUNCHER_CONFIG: file {path} does not exist")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except configparser.Error as exc:
        raise ConfigError(f"{path}: not a valid ini file: {exc}") from None
    for section in parser.sections():
        if section not in _INI_KEYS:
            raise ConfigError(f"{path}: unknown section [{section}]")
        unknown = set(parser.options(section)) - _INI_KEYS[section]
        if unknown:
            names = ", ".join(sorted(unknown))
            raise ConfigError(f"{path}: unknown key(s) in [{section}]: {names}")
    return parser


def _redis_url_from_ini(source: _Source) -> str | None:
    """Build a URL from ``[redis]`` host/port/db/password (nmt-wizard's settings.ini layout)."""
    parser = source.parser
    if parser is None or not parser.has_section("redis"):
        return None
    host = parser.get("redis", "host", fallback="127.0.0.1")
    port = source.get_int("", "redis", "port", 6379, minimum=1)
    db = source.get_int("", "redis", "db", 0)
    password = parser.get("redis", "password", fallback="")
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{auth}{host}:{port}/{db}"


def load_launcher_config(environ: Mapping[str, str] | None = None) -> LauncherConfig:
    """Resolve the configuration from ``environ`` (default: os.environ) and LAUNCHER_CONFIG."""
    environ = os.environ if environ is None else environ
    ini_name = environ.get("LAUNCHER_CONFIG") or None
    ini_file = Path(ini_name).expanduser().resolve() if ini_name else None
    parser = _read_ini(ini_file) if ini_file else None
    source = _Source(environ, parser, ini_file)

    log_level, origin = source.get("LOG_LEVEL", "default", "log_level")
    log_level = (log_level or "INFO").upper()
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"{origin}: log level must be one of {', '.join(LOG_LEVELS)}")

    config_dir, origin = source.get("CONFIG_DIR", "default", "config_dir")
    config_path = None
    if config_dir:
        config_path = Path(config_dir).expanduser()
        from_file = not origin.startswith("environment")
        if not config_path.is_absolute() and ini_file and from_file:
            config_path = ini_file.parent / config_path  # relative to the file that names it
        if not config_path.is_dir():
            raise ConfigError(f"{origin}: directory {config_path} does not exist")

    redis_url, origin = source.get("REDIS_URL")
    redis_url = redis_url or _redis_url_from_ini(source)
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"{origin}: expected a redis://, rediss:// or unix:// URL")

    database_url, _ = source.get("DATABASE_URL", "database", "url")

    # The launcher's address as tasks reach it, for pools whose configuration names none.
    callback_url, origin = source.get("CALLBACK_URL", "default", "callback_url")
    if callback_url and not callback_url.startswith(("http://", "https://")):
        raise ConfigError(f"{origin}: expected an http:// or https:// URL")

    return LauncherConfig(
        config_dir=config_path,
        log_level=log_level,
        refresh_counter=source.get_int("REFRESH_COUNTER", "default", "refresh_counter", 200, 1),
        quarantine_time=source.get_int("QUARANTINE_TIME", "default", "quarantine_time", 600),
        redis_url=redis_url,
        database_url=database_url,
        callback_url=callback_url.rstrip("/") if callback_url else None,
        ini_file=ini_file,
    )
