"""``snw login``, ``logout``, expired tokens, an unreachable server, ``snw token``."""

from __future__ import annotations

import json
import stat
import time

import pytest

from tests.cli.conftest import PASSWORD
from tests.helpers import until

pytestmark = pytest.mark.django_db(transaction=True)


def test_login_prompts_saves_token_0600_and_logout_revokes(snw, people, token_file):
    result = snw("login", input=f"AATRN\n{PASSWORD}\n")
    assert "Login: AATRN" in result.output
    assert "Password: " in result.output
    token = token_file.read_text().strip()
    assert token.startswith("_T_")
    assert f"Got token {token[:7]}… for 600s, saved to {token_file}" in result.stdout
    assert token not in result.output  # a secret: shown masked only (--json shows it)
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert "No tasks." in snw("lt").stdout  # the saved token is sent

    assert "Logged out." in snw("logout").stdout
    assert not token_file.exists()
    # The token was revoked on the server, not only forgotten.
    rejected = snw("lt", ok=False, SNW_TOKEN=token)
    assert "the token given by --token/SNW_TOKEN was refused" in rejected.output


def test_login_password_stdin_overwrites_with_mode_0600(snw, people, token_file):
    token_file.write_text("old")
    token_file.chmod(0o644)
    result = snw("login", "--login", "AATRN", "--password-stdin", "--json", input=PASSWORD + "\n")
    answer = json.loads(result.stdout)
    assert answer["duration"] == 600 and answer["token"] == token_file.read_text().strip()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600


def test_bad_login_prints_the_server_message(snw, people, token_file):
    result = snw("login", "--login", "AATRN", "--password-stdin", input="wrong\n", ok=False)
    assert "Invalid credentials" in result.output
    assert not token_file.exists()


def test_password_stdin_needs_login(snw_offline, token_file):
    """Else the "Login:" prompt would read the password as the login name."""
    result = snw_offline("login", "--password-stdin", input=PASSWORD + "\n", ok=False)
    assert result.exit_code == 2 and "Login:" not in result.output
    assert "--password-stdin needs --login" in result.output
    assert not token_file.exists()


def test_rate_limited_login_is_reported_at_once(snw, people, settings):
    """The lock-out's 429 carries Retry-After: the client must not sleep it and retry."""
    settings.SNW_LOGIN_MAX_FAILURES = 2
    settings.SNW_LOGIN_FAILURE_WINDOW = 6
    login = ("login", "--login", "AATRN", "--password-stdin")
    for _ in range(2):
        assert "Invalid credentials" in snw(*login, input="wrong\n", ok=False).output
    started = time.monotonic()
    result = snw(*login, input=PASSWORD + "\n", ok=False)
    assert time.monotonic() - started < 3
    assert result.output.startswith("Error: Too many failed logins")
    assert "seconds" in result.output  # when to retry


def test_not_logged_in(snw, people):
    assert "not logged in" in snw("lt", ok=False).output


def test_expired_token_gives_a_login_hint(snw, login_as):
    login_as("AATRN", duration=1)

    def expired():
        result = snw("lt", ok=None)
        return result if result.exit_code else None

    result = until(expired, timeout=15, what="the token to expire")
    assert result.output == (
        "Error: Invalid or expired token; run `snw login` to get a new token\n"
    )


def test_snw_token_env_wins_over_the_saved_file(snw, people, login_as):
    login_as("AATRN")
    assert "not logged in" not in snw("lt", SNW_TOKEN="_T_bogus", ok=False).output


def test_persistent_tokens(snw, login_as):
    login_as("AATRN")
    created = json.loads(snw("token", "create", "ci", "--json").stdout)
    assert created["token"].startswith("_P_") and created["name"] == "ci"
    listed = snw("token", "list").stdout
    assert "ci" in listed and "AATRN" in listed
    shown = json.loads(snw("token", "show", str(created["id"]), "--json").stdout)
    assert shown["active"] is True and "token" not in shown
    # The new token works on its own.
    assert "No tasks." in snw("lt", SNW_TOKEN=created["token"]).stdout
    assert f"Revoked token {created['id']}." in snw("token", "delete", str(created["id"])).stdout
    refused = snw("lt", SNW_TOKEN=created["token"], ok=False).output
    assert refused == (
        "Error: the token given by --token/SNW_TOKEN was refused: Invalid or expired token.\n"
    )
    assert "Error: " in snw("token", "show", "999999", ok=False).output


def test_server_unreachable_is_one_clear_line(snw_offline, dead_url):
    result = snw_offline("--url", dead_url, "--token", "_T_x", "ls", ok=False)
    assert result.output.strip() == (
        f"Error: cannot reach the launcher at {dead_url} (is it running? check --url/SNW_URL)"
    )


def test_passwd_prompts_changes_the_password_and_forgets_the_revoked_token(
    snw, login_as, token_file
):
    login_as("AATRN")
    new = "a-brand-new-passphrase"

    result = snw("passwd", input=f"{PASSWORD}\n{new}\n{new}\n")

    assert "Password changed" in result.stdout and "snw login" in result.stdout
    assert "Current password: " in result.output and "Repeat for confirmation" in result.output
    assert new not in result.output
    assert not token_file.exists()
    assert snw("login", "--login", "AATRN", "--password-stdin", input=new + "\n").exit_code == 0


def test_passwd_errors_name_the_field_and_keep_the_password(snw, login_as, token_file):
    login_as("AATRN")

    wrong = snw("passwd", "--password-stdin", input="wrong\nanother-passphrase\n", ok=False)
    weak = snw("passwd", "--password-stdin", input=f"{PASSWORD}\n123\n", ok=False)
    missing = snw("passwd", "--password-stdin", input=f"{PASSWORD}\n", ok=False)

    assert "current_password" in wrong.output
    assert "new_password" in weak.output and "too short" in weak.output
    assert "no line with the new password" in missing.output
    assert token_file.exists()
    assert "No tasks." in snw("lt").stdout  # the token still works: nothing changed
