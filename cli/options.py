"""Shared options of every ``snw`` command, and the config object built from them.

Each shared option is a named decorator with an environment fallback. They are accepted both
before the command (``snw --json lt``) and after it (``snw lt --json``); a value typed on the
command line wins over one taken from the environment.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import click
from click.core import ParameterSource

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_URL",
    "JSON_OBJECT",
    "Config",
    "json_option",
    "pass_config",
    "shared_options",
    "timeout_option",
    "token_file_path",
    "token_option",
    "url_option",
]

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 30.0
TOKEN_FILE_NAME = ".launcher_token"  # noqa: S105 (a file name, not a secret)
_META_KEY = "snw.options"


def token_file_path() -> Path:
    """Where ``snw login`` keeps the token: ``SNW_TOKEN_FILE``, else ``$HOME/.launcher_token``."""
    override = os.environ.get("SNW_TOKEN_FILE")
    if override:
        return Path(override).expanduser()
    return Path(os.path.expanduser("~")) / TOKEN_FILE_NAME


def _remember(ctx: click.Context, param: click.Parameter, value):
    """Store the option in the context tree: the first value seen, or one typed later."""
    options = ctx.meta.setdefault(_META_KEY, {})
    source = ctx.get_parameter_source(param.name)
    first = param.name not in options
    if value is not None and (first or source == ParameterSource.COMMANDLINE):
        options[param.name] = value
    return value


def _shared(*param_decls: str, **attrs):
    attrs.setdefault("expose_value", False)
    attrs.setdefault("callback", _remember)
    attrs.setdefault("is_eager", True)
    return click.option(*param_decls, **attrs)


url_option = _shared(
    "--url",
    "url",
    envvar="SNW_URL",
    metavar="URL",
    help=f"Launcher URL [env SNW_URL; default {DEFAULT_URL}].",
)
token_option = _shared(
    "--token",
    "token",
    envvar="SNW_TOKEN",
    metavar="TOKEN",
    help="Token to send instead of the saved one [env SNW_TOKEN].",
)
json_option = _shared(
    "--json",
    "json",
    is_flag=True,
    default=None,
    envvar="SNW_JSON",
    help="Print the server's JSON instead of tables [env SNW_JSON=1].",
)
timeout_option = _shared(
    "--timeout",
    "timeout",
    type=click.FloatRange(min=0.1),
    envvar="SNW_TIMEOUT",
    metavar="SECONDS",
    help=f"Per-request timeout [env SNW_TIMEOUT; default {DEFAULT_TIMEOUT:g}].",
)


def shared_options(func):
    """Apply every shared option (``--url``, ``--token``, ``--json``, ``--timeout``)."""
    for option in reversed((url_option, token_option, json_option, timeout_option)):
        func = option(func)
    return func


@dataclass
class Config:
    """What a command needs to talk to the launcher: URL, credentials, output mode."""

    url: str = DEFAULT_URL
    token: str | None = None
    json: bool = False
    timeout: float = DEFAULT_TIMEOUT
    token_file: Path = field(default_factory=token_file_path)
    _client: object = field(default=None, repr=False)

    def saved_token(self) -> str | None:
        """The token to send: ``--token``/``SNW_TOKEN``, else the one ``snw login`` saved."""
        if self.token:
            return self.token
        try:
            return self.token_file.read_text().strip() or None
        except OSError:
            return None

    @property
    def client(self):
        """The HTTP client (built on first use: ``requests`` is imported only then)."""
        if self._client is None:
            from cli.client import Client

            self._client = Client(
                self.url,
                token=self.saved_token(),
                token_given=bool(self.token),
                timeout=self.timeout,
            )
        return self._client


def pass_config(func):
    """Hand the command a :class:`Config` built from the shared options (once per run)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        ctx = click.get_current_context()
        config = ctx.meta.get("snw.config")
        if config is None:
            options = ctx.meta.get(_META_KEY, {})
            config = Config(
                url=(options.get("url") or DEFAULT_URL).rstrip("/"),
                token=options.get("token") or None,
                json=bool(options.get("json")),
                timeout=options.get("timeout") or DEFAULT_TIMEOUT,
            )
            ctx.meta["snw.config"] = config
        return func(config, *args, **kwargs)

    return wrapper


class JsonObjectParam(click.ParamType):
    """A JSON object given inline or as ``@file`` (nmt-wizard's ``-o`` convention)."""

    name = "JSON|@FILE"

    def convert(self, value, param, ctx):
        import json

        if isinstance(value, dict):
            return value
        text = value
        if value.startswith("@"):
            try:
                text = Path(value[1:]).expanduser().read_text()
            except OSError as exc:
                self.fail(f"cannot read {value[1:]}: {exc.strerror}", param, ctx)
        try:
            data = json.loads(text)
        except ValueError as exc:
            self.fail(f"invalid JSON: {exc}", param, ctx)
        if not isinstance(data, dict):
            self.fail("expected a JSON object", param, ctx)
        return data


JSON_OBJECT = JsonObjectParam()
