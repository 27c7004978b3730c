"""The one configuration read by the launcher and by every worker.

Values come from the environment and, when ``LAUNCHER_CONFIG`` names one, from an ini file with
the sections of nmt-wizard's ``settings.ini`` (``[default]``, ``[redis]``, ``[flask]``) plus
``[database]``. The environment always wins over the file. Any wrong value stops start-up with a
:class:`~nmtwizard.exceptions.ConfigError` naming the key and where it came from; no message ever
shows a secret or a database URL (it may hold a password).

An nmt-wizard ``settings.ini`` is read as it is (issue 13): ``[flask] SQLALCHEMY_DATABASE_URI``
(PostgreSQL or SQLite) is the database, ``[flask] SECRET_KEY`` the secret key, the other Flask
keys are ignored with one warning; ``[default] taskfile_dir`` and ``max_log_size`` are kept for
the task-data storage and take effect with it. Without ``config_dir``, the pool files sit next
to the file when ``default.json`` does, as nmt-wizard expects them.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from nmtwizard import defaults
from nmtwizard.exceptions import ConfigError

__all__ = ["LOG_LEVELS", "LauncherConfig", "load_launcher_config"]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Known keys per section; anything else in the file is a typo worth stopping for.
_INI_KEYS = {
    "default": {
        "config_dir",
        "log_level",
        "refresh_counter",
        "quarantine_time",
        "callback_url",
        "taskfile_dir",
        "max_log_size",
    },
    "redis": {"host", "port", "db", "password"},
    "database": {"url"},
    "flask": None,  # any Flask key: the two SNW honours are read, the others ignored (warning)
}
# [flask] keys SNW honours (configparser lower-cases key names).
_FLASK_DATABASE = "sqlalchemy_database_uri"
_FLASK_SECRET = "secret_key"  # noqa: S105 - a key name, not a secret
# nmt-wizard's [default] keys that take effect with the task-data storage.
_DEFERRED_KEYS = ("taskfile_dir", "max_log_size")


@dataclass(frozen=True)
class LauncherConfig:
    """Resolved settings: environment over ini file over code defaults."""

    config_dir: Path | None
    log_level: str
    refresh_counter: int
    quarantine_time: int
    redis_url: str | None = field(repr=False)
    database_url: str | None = field(repr=False)
    callback_url: str | None = None
    ini_file: Path | None = None
    secret_key: str | None = field(default=None, repr=False)
    #: nmt-wizard's per-task file root and log cap: kept for the task-data storage.
    taskfile_dir: Path | None = None
    max_log_size: int | None = None
    #: Messages to log once at start-up (ignored Flask keys, keys not yet in effect).
    warnings: tuple[str, ...] = ()


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


def _ini_error(exc: configparser.Error) -> str:
    """What is wrong, by line number: configparser's own text quotes the line, which may be a
    password or a secret key."""
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return f"line {exc.lineno}: a key before any [section] header"
    if isinstance(exc, configparser.ParsingError):
        lines = ", ".join(str(lineno) for lineno, _line in exc.errors)
        return f"line(s) {lines}: expected 'key = value' or a [section] header"
    return str(exc)  # duplicate sections/options: names, never values


def _read_ini(path: Path) -> configparser.ConfigParser:
    if not path.is_file():
        raise ConfigError(f"LAUNCHER_CONFIG: file {path} does not exist")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except configparser.Error as exc:
        raise ConfigError(f"{path}: not a valid ini file: {_ini_error(exc)}") from None
    for section in parser.sections():
        if section not in _INI_KEYS:
            raise ConfigError(f"{path}: unknown section [{section}]")
        if _INI_KEYS[section] is None:
            continue
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


def _database_url_from_sqlalchemy(uri: str, origin: str, base_dir: Path | None) -> str:
    """The ``DATABASE_URL`` form of a SQLAlchemy URI: ``postgresql+psycopg2://`` loses its
    driver, ``sqlite:///rel`` becomes absolute (relative to ``base_dir``, the ini file's
    directory). Errors name ``origin`` and the scheme, never the URI (it may hold a password)."""
    scheme, sep, rest = uri.partition("://")
    dialect = scheme.split("+", 1)[0].lower()
    if not sep or dialect not in ("postgresql", "postgres", "sqlite"):
        shown = dialect if sep else "none"
        raise ConfigError(
            f"{origin}: unsupported database {shown!r}; SNW runs on PostgreSQL "
            "(postgresql://…) or SQLite (sqlite:///path)"
        )
    if dialect != "sqlite":
        return f"postgresql://{rest}"
    path = rest[1:] if rest.startswith("/") else ""
    if not path or path == ":memory:":
        raise ConfigError(
            f"{origin}: an in-memory SQLite database cannot be shared by the launcher and its "
            "workers; name a file (sqlite:///relative or sqlite:////absolute)"
        )
    path = path.split("?", 1)[0]
    file = Path(path)
    if not file.is_absolute():
        file = (base_dir or Path.cwd()) / file
    return f"sqlite:///{file}"


def _flask_settings(source: _Source) -> tuple[str | None, str | None, list[str]]:
    """``(database URL, secret key, warnings)`` from nmt-wizard's ``[flask]`` section."""
    parser = source.parser
    if parser is None or not parser.has_section("flask"):
        return None, None, []
    database_url = None
    if parser.has_option("flask", _FLASK_DATABASE):
        origin = f"[flask] SQLALCHEMY_DATABASE_URI in {source.ini_file}"
        base_dir = source.ini_file.parent if source.ini_file else None
        uri = parser.get("flask", _FLASK_DATABASE).strip()
        database_url = _database_url_from_sqlalchemy(uri, origin, base_dir)
    secret_key = parser.get("flask", _FLASK_SECRET, fallback="").strip() or None
    ignored = sorted(set(parser.options("flask")) - {_FLASK_DATABASE, _FLASK_SECRET})
    warnings = []
    if ignored:
        warnings.append(
            f"{source.ini_file}: [flask] {', '.join(ignored)} ignored: SNW is not a Flask "
            "application (only SQLALCHEMY_DATABASE_URI and SECRET_KEY are read)"
        )
    return database_url, secret_key, warnings


def _deferred_settings(source: _Source) -> tuple[Path | None, int | None, list[str]]:
    """nmt-wizard's ``taskfile_dir`` and ``max_log_size``: validated and kept; they take
    effect with the task-data storage (logs stay capped at ``defaults.MAX_LOG_SIZE`` and task
    files in Redis until then)."""
    raw_dir, _ = source.get("", "default", "taskfile_dir")  # no variable: ini only
    taskfile_dir = None
    if raw_dir:
        taskfile_dir = Path(raw_dir).expanduser()
        if not taskfile_dir.is_absolute():
            taskfile_dir = source.ini_file.parent / taskfile_dir
    max_log_size = source.get_int("", "default", "max_log_size", None, minimum=1)
    parser = source.parser
    named = [k for k in _DEFERRED_KEYS if parser is not None and parser.has_option("default", k)]
    warnings = []
    if named:
        warnings.append(
            f"{source.ini_file}: [default] {', '.join(named)} accepted; they take effect with "
            "the task-data storage (until then task logs are capped at "
            f"{defaults.MAX_LOG_SIZE} bytes and task files are kept in Redis)"
        )
    return taskfile_dir, max_log_size, warnings


def _default_config_dir(ini_file: Path | None) -> Path | None:
    """nmt-wizard keeps ``default.json`` (and its pool files) next to ``settings.ini``."""
    if ini_file is not None and (ini_file.parent / "default.json").is_file():
        return ini_file.parent
    return None


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
    else:
        config_path = _default_config_dir(ini_file)

    redis_url, origin = source.get("REDIS_URL")
    redis_url = redis_url or _redis_url_from_ini(source)
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"{origin}: expected a redis://, rediss:// or unix:// URL")

    flask_database_url, flask_secret_key, warnings = _flask_settings(source)
    database_url, _ = source.get("DATABASE_URL", "database", "url")
    database_url = database_url or flask_database_url
    secret_key, _ = source.get("SECRET_KEY")
    taskfile_dir, max_log_size, deferred_warnings = _deferred_settings(source)

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
        secret_key=secret_key or flask_secret_key,
        taskfile_dir=taskfile_dir,
        max_log_size=max_log_size,
        warnings=tuple(warnings + deferred_warnings),
    )
