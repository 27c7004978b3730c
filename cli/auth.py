"""``snw login``, ``logout``, ``whoami`` and ``snw token`` (persistent ``_P_`` tokens)."""

from __future__ import annotations

import os
import sys
import time

import click

from cli.options import pass_config, shared_options
from cli.output import emit, table

__all__ = ["TokenRefresher", "login", "logout", "passwd", "token", "whoami"]


def save_token(path, token: str) -> None:
    """Write the token readable by its owner only (0600, also when the file existed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, token.encode() + b"\n")
    finally:
        os.close(fd)


class TokenRefresher:
    """Keeps a ``_T_`` token alive through a long command (``snw log -f``).

    :meth:`refresh_if_due` trades the client's token for a new one (``POST /auth/token/refresh``)
    at most every half token lifetime, and saves it where ``snw login`` does when the token came
    from there (not from --token/SNW_TOKEN). A server that refuses (a session at its age limit,
    an older launcher without the route) is told once on standard error; the command goes on
    with its token until it expires. Persistent ``_P_`` tokens need no refresh.
    """

    def __init__(self, config):
        self.config = config
        self.client = config.client
        self.enabled = (self.client.token or "").startswith("_T_")
        self.due = 0.0  # time.monotonic() of the next refresh: the first call refreshes

    def refresh_if_due(self) -> None:
        from cli.client import ServerError

        if not self.enabled or time.monotonic() < self.due:
            return
        try:
            answer = self.client.post("auth/token/refresh")
        except ServerError as exc:
            if exc.status in (403, 404, 405):
                self.enabled = False
                click.echo(f"[snw] cannot refresh the token ({exc.message})", err=True)
                return
            if exc.status == 401:
                raise
            self.due = time.monotonic() + 30  # a passing failure: try again later
            return
        if not self.config.token:  # the saved token: keep the file current, as `snw login` does
            save_token(self.config.token_file, answer["token"])
        self.client.token = answer["token"]
        self.due = time.monotonic() + max(answer["duration"] / 2, 1)


# =============================================================================
# Login and logout
# =============================================================================
@click.command()
@click.option("--login", "login_name", metavar="TRAINER_ID", help="Trainer id (else prompted).")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input (scripts; needs --login).",
)
@click.option(
    "--duration", type=click.IntRange(min=1), metavar="SECONDS", help="Token validity (600)."
)
@shared_options
@pass_config
def login(config, login_name, password_stdin, duration):
    """Get a token for TRAINER_ID and save it for the other commands.

    The token is written to ~/.launcher_token (SNW_TOKEN_FILE overrides), mode 0600, and
    printed masked; --json prints it whole.

    \b
      snw login
      echo "$PASSWORD" | snw login --login AATRN --password-stdin
    """
    if password_stdin and not login_name:
        # A "Login:" prompt would read the password line as the login name.
        raise click.UsageError("--password-stdin needs --login TRAINER_ID")
    if not login_name:
        login_name = click.prompt("Login")
    if password_stdin:
        password = _stdin_line("the password")
    else:
        password = click.prompt("Password", hide_input=True)
    params = {"duration": duration} if duration else None
    answer = config.client.get("auth/token", auth=(login_name, password), params=params)
    save_token(config.token_file, answer["token"])
    emit(
        config,
        {**answer, "token_file": str(config.token_file)},
        lambda a: click.echo(
            f"Got token {_masked(a['token'])} for {a['duration']}s, saved to {a['token_file']}"
        ),
    )


def _masked(token: str) -> str:
    """Enough of a token to tell tokens apart (``_T_`` and 4 characters), not to use it."""
    return f"{token[:7]}…"


@click.command()
@shared_options
@pass_config
def logout(config):
    """Revoke the current token on the server and forget the saved one."""
    from cli.client import ServerError

    saved = config.saved_token()
    if not saved:
        raise click.ClickException("not logged in")
    revoked = True
    try:
        config.client.post("auth/logout")
    except ServerError as exc:
        if exc.status != 401:
            raise
        revoked = False  # already expired: nothing to revoke
    _forget_saved_token(config)
    message = "Logged out." if revoked else "Token had already expired; logged out."
    emit(config, {"revoked": revoked}, lambda _: click.echo(message))


@click.command()
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the current then the new password, one per line, from standard input.",
)
@shared_options
@pass_config
def passwd(config, password_stdin):
    """Change your password (POST /auth/password).

    Every token of yours stops working, the saved one included: log in again after.
    """
    if password_stdin:
        current, new = _stdin_line("the current password"), _stdin_line("the new password")
    else:
        current = click.prompt("Current password", hide_input=True)
        new = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    answer = config.client.post(
        "auth/password", json={"current_password": current, "new_password": new}
    )
    _forget_saved_token(config)  # revoked by the change
    emit(config, answer, lambda a: click.echo(f"{a['message']} Log in again: snw login"))


def _stdin_line(what: str) -> str:
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise click.UsageError(f"--password-stdin: no line with {what} on standard input")
    return line


def _forget_saved_token(config) -> None:
    """Delete the saved token file, unless the token used came from elsewhere (SNW_TOKEN)."""
    if not config.token or config.token == _read(config.token_file):
        config.token_file.unlink(missing_ok=True)


def _read(path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


@click.command()
@shared_options
@pass_config
def whoami(config):
    """Show who the token belongs to: user, entity and abilities (GET /auth/me)."""

    def human(me: dict) -> None:
        entity = me.get("entity")
        if isinstance(entity, dict):
            entity = entity.get("entity_code") or entity.get("name")
        click.echo(f"User:      {me.get('trainer_id', '')}  {me.get('name', '')}".rstrip())
        click.echo(f"Entity:    {entity or ''}")
        abilities = me.get("abilities") or {}
        if isinstance(abilities, dict):
            for code, perms in sorted(abilities.items()):
                click.echo(f"Abilities: {code}: {', '.join(sorted(perms))}")
        elif abilities:
            click.echo(f"Abilities: {', '.join(map(str, abilities))}")

    emit(config, config.client.get("auth/me"), human)


# =============================================================================
# Persistent tokens (/auth/tokens)
# =============================================================================
_TOKEN_COLUMNS = ("id", "name", "owner", "created_at", "expires_at", "last_used_at", "active")


def _tok(tokens: list[dict]) -> str:
    if not tokens:
        return "No tokens."
    return table(
        ["ID", "Name", "Owner", "Created", "Expires", "Last used", "Active"],
        [[t.get(c) for c in _TOKEN_COLUMNS] for t in tokens],
        align=["right", "left", "left", "left", "left", "left", "center"],
    )


@click.group()
def token():
    """Persistent (_P_) tokens for scripts: list, show, create, delete."""


@token.command("list")
@click.option("--owner", metavar="TRAINER_ID", help="Only this user's tokens (administrators).")
@shared_options
@pass_config
def token_list(config, owner):
    """List your persistent tokens (an administrator also sees their users')."""
    params = {"owner": owner} if owner else None
    emit(config, config.client.get("auth/tokens", params=params), lambda t: click.echo(_tok(t)))


@token.command("show")
@click.argument("token_id", type=int)
@shared_options
@pass_config
def token_show(config, token_id):
    """Show one persistent token (never its secret)."""
    emit(config, config.client.get(f"auth/tokens/{token_id}"), lambda t: click.echo(_tok([t])))


@token.command("create")
@click.argument("name")
@click.option("--expires-at", type=click.DateTime(), help="Expiry (ISO date/time); default: never.")
@shared_options
@pass_config
def token_create(config, name, expires_at):
    """Create a persistent token NAME; its secret is printed once."""
    body = {"name": name}
    if expires_at:
        body["expires_at"] = expires_at.isoformat()
    created = config.client.post("auth/tokens", json=body)

    def human(t: dict) -> None:
        expiry = t.get("expires_at") or "never"
        click.echo(f"Created token {t['id']} ({t['name']}), expires: {expiry}")
        click.echo(f"{t['token']}")
        click.echo("Store it now: it is not shown again.", err=True)

    emit(config, created, human)


@token.command("delete")
@click.argument("token_id", type=int)
@shared_options
@pass_config
def token_delete(config, token_id):
    """Revoke a persistent token."""
    config.client.delete(f"auth/tokens/{token_id}")
    emit(config, {"revoked": token_id}, lambda _: click.echo(f"Revoked token {token_id}."))
