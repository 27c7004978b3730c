"""Start-up of the Django project: a wrong setting stops it with a message naming the key."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]


def manage(*args: str, **environ: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(environ)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_malformed_ini_stops_start_up_naming_the_file(tmp_path):
    ini = tmp_path / "launcher.ini"
    ini.write_text("[default]\nquarantine_time = a while\n")
    result = manage("check", LAUNCHER_CONFIG=str(ini), DEBUG="1")
    assert result.returncode != 0
    assert f"[default] quarantine_time in {ini}" in result.stderr


def test_secret_key_is_required_when_debug_is_off():
    result = manage("check", DEBUG="0", SECRET_KEY="")
    assert result.returncode != 0
    assert "SECRET_KEY: required when DEBUG is off" in result.stderr


@pytest.mark.parametrize("url", ["mysql2://nowhere/db", "not a url"])
def test_bad_database_url_names_the_variable(url):
    result = manage("check", DEBUG="1", DATABASE_URL=url)
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


def test_deploy_check_is_clean_with_production_settings():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY="x" * 20 + "production-like-secret-key-with-enough-entropy-0123456789",
        ALLOWED_HOSTS="snw.example.org",
        SECURE_SSL_REDIRECT="1",
        SECURE_HSTS_SECONDS="31536000",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="1",
        SECURE_HSTS_PRELOAD="1",
    )
    assert result.returncode == 0, result.stderr
