"""The one-command run: embedded Redis + SQLite + launcher, all stopped on SIGTERM."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.helpers import demo_session, demo_task_runs, free_port

BASE_DIR = Path(__file__).resolve().parents[2]
DEMO_PASSWORD = "demo-password-for-tests"


def _children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(line) for line in out.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


@pytest.mark.slow
def test_run_serves_status_runs_a_demo_task_and_stops_everything_on_sigterm(tmp_path):
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        SNW_VAR_DIR=str(tmp_path / "var"),
        SNW_PORT=str(port),
        SNW_EMBEDDED_REDIS_PORT=str(free_port()),
        SNW_ADMIN_PASSWORD="admin-password-for-tests",
        SNW_DEMO_PASSWORD=DEMO_PASSWORD,
    )
    run = subprocess.Popen(
        [sys.executable, "-m", "snw_site.embedded_run"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        body = None
        while time.monotonic() < deadline and run.poll() is None:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/status", timeout=2)
                body = response.json()
                break
            except requests.ConnectionError:
                time.sleep(0.3)
        assert body is not None, "launcher never answered"
        assert response.status_code == 200
        assert body["database"] is True and body["redis"] is True
        # The embedded Redis keeps its data with AOF under var/redis.
        assert (tmp_path / "var" / "redis").is_dir()
        assert (tmp_path / "var" / "snw.sqlite3").is_file()

        base = f"http://127.0.0.1:{port}"
        demo_task_runs(demo_session(base, DEMO_PASSWORD), base, "local_demo")

        children = _children_of(run.pid)
        assert children, "the run started no child process"
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=30) == 0
        time.sleep(0.2)
        assert [pid for pid in children if _alive(pid)] == []
    finally:
        if run.poll() is None:
            run.kill()
        output = run.stdout.read()
        run.stdout.close()
    assert "SNW is running on" in output


@pytest.mark.slow
def test_manage_runs_commands_on_the_embedded_database_and_redis(tmp_path):
    """`make manage` reaches the data `make run` uses; with no instance running it starts the
    embedded Redis for the command alone and stops it after."""
    redis_port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(SNW_VAR_DIR=str(tmp_path / "var"), SNW_EMBEDDED_REDIS_PORT=str(redis_port))

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "snw_site.embedded_run", "manage", *args],
            cwd=BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert manage("migrate", "--noinput", "--verbosity", "0").returncode == 0
    created = manage("createentity", "XY", "Xylophone works")
    again = manage("createentity", "XY", "Xylophone works")

    assert created.returncode == 0, created.stderr
    assert again.returncode == 1 and "exists" in again.stderr
    assert (tmp_path / "var" / "snw.sqlite3").is_file()
    assert (tmp_path / "var" / "redis" / "appendonly.aof").exists()  # the ability cache's Redis
    with pytest.raises(ConnectionRefusedError):  # stopped with the command
        socket.create_connection(("127.0.0.1", redis_port), timeout=1)


def test_an_nmtwizard_settings_file_wins_over_the_runs_defaults(tmp_path, monkeypatch):
    """`make run` with LAUNCHER_CONFIG: the file's Redis, secret key and pool directory are
    used (no embedded Redis, no generated key, no demo pools), a worker for each of its pools."""
    from snw_site.embedded_run import DEMO_CONFIG_DIR, _demo_pools, _environment

    site = tmp_path / "site"
    site.mkdir()
    (site / "settings.ini").write_text(
        "[flask]\nSECRET_KEY = from-the-file\n[redis]\nhost = redis.internal\nport = 6390\ndb = 3\n"
    )
    (site / "default.json").write_text("{}")
    for name in ("GPa", "GPb"):
        pool = {"name": name, "description": name, "service": "fake"}
        pool["variables"] = {"server_pool": [{"name": "h", "gpus": [0], "ncpus": 1}]}
        (site / f"{name}.json").write_text(json.dumps(pool))
    for variable in ("REDIS_URL", "SECRET_KEY", "CONFIG_DIR", "CALLBACK_URL", "SNW_DEMO_POOLS"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LAUNCHER_CONFIG", str(site / "settings.ini"))

    env = _environment(tmp_path / "var", "127.0.0.1", "8123")

    assert env["REDIS_URL"] == "redis://redis.internal:6390/3"
    assert "SECRET_KEY" not in env  # read from the file by every process
    assert env["CONFIG_DIR"] == str(site)  # default.json next to settings.ini
    assert env["CALLBACK_URL"] == "http://127.0.0.1:8123"
    assert _demo_pools(env) == ["GPa", "GPb"]
    assert _demo_pools({**env, "SNW_DEMO_POOLS": "GPb"}) == ["GPb"]
    assert _demo_pools({"CONFIG_DIR": str(DEMO_CONFIG_DIR)}) == ["local_demo", "demo"]

    (site / "settings.ini").write_text("[default]\nquarantine_time = soon\n")
    with pytest.raises(SystemExit, match=r"configuration error: \[default\] quarantine_time"):
        _environment(tmp_path / "var", "127.0.0.1", "8123")


@pytest.mark.parametrize(("configured", "expected"), [(None, 1 << 30), ("3mb", 3 << 20)])
def test_the_embedded_redis_is_bounded_and_never_evicts(tmp_path, configured, expected):
    """``make run``'s Redis: maxmemory (SNW_EMBEDDED_REDIS_MAXMEMORY, default 1gb), noeviction."""
    import redis

    from snw_site.embedded_run import _embedded_redis

    env = {"SNW_EMBEDDED_REDIS_PORT": str(free_port())}
    if configured:
        env["SNW_EMBEDDED_REDIS_MAXMEMORY"] = configured
    with _embedded_redis(env, tmp_path) as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        try:
            settings = client.config_get("maxmemory*")
        finally:
            client.close()
    assert settings["maxmemory"] == str(expected)
    assert settings["maxmemory-policy"] == "noeviction"
