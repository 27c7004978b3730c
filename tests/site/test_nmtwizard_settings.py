"""An nmt-wizard site directory starts SNW as it is (issue 13, item 4).

The directory holds what nmt-wizard's README lays out: ``settings.ini`` with ``[flask]``,
``[default]`` (``taskfile_dir`` included) and ``[redis]``, ``default.json`` next to it, and one
pool file per pool in nmt-wizard's keys (written here from the reference, not copied). Real
processes: migrations, the launcher (runserver) and workers, with nothing but
``LAUNCHER_CONFIG`` in their environment; the database is the SQLite file that
``SQLALCHEMY_DATABASE_URI`` names, Redis the test database.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.engine.conftest import NMTWIZARD_DEFAULT
from tests.helpers import DEMO_TASK, demo_session, demo_task_runs, free_port, until
from tests.services.sshd import start_hosts
from tests.site.test_startup import manage

pytestmark = pytest.mark.slow

BASE_DIR = Path(__file__).resolve().parents[2]
DEMO_PASSWORD = "demo-password-for-nmtwizard-settings"
# Variables of the test runner that would otherwise win over the site directory's files (an
# empty value counts as unset).
_OVERRIDDEN = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "CONFIG_DIR", "CALLBACK_URL")


def _settings_ini(redis_url: str) -> str:
    redis = urlsplit(redis_url)
    return f"""\
[flask]
debug = false
SQLALCHEMY_DATABASE_URI = sqlite:///snw.sqlite3
SQLALCHEMY_TRACK_MODIFICATIONS = False
SECRET_KEY = a-secret-key-kept-in-the-nmt-wizard-settings-file-0123456789

[default]
# path to taskfiles directory
taskfile_dir = taskfiles
log_level = INFO
refresh_counter = 20
quarantine_time = 600
max_log_size = 1048576

[redis]
host = {redis.hostname}
port = {redis.port}
db   = {redis.path.strip("/") or 0}
"""


def _ssh_pool(name: str, host, private_key: Path, disabled) -> dict:
    """nmt-wizard's ssh pool keys; ``runtime`` is SNW's (the test hosts have no Docker)."""
    return {
        "name": name,
        "description": f"{name}: GPU training server",
        "visibility": ["DM"],
        "module": "services.ssh",
        "variables": {
            "runtime": "process",
            "server_pool": [
                {
                    "host": "127.0.0.1",
                    "port": host.port,
                    "gpus": [0, 1],
                    "ncpus": 2,
                    "login": getpass.getuser(),
                    "log_dir": str(host.root),
                    "priority": 1,
                    "only_gpu_task": False,
                    "entities": {"DM": True},
                }
            ],
        },
        "requirements": {"free_disk_space": {"/tmp": 0}},
        "privateKey": str(private_key),
        "docker": {"mount": ["/tmp:/root/tmp"], "envvar": {}},
        "disabled": disabled,
    }


def _unsupported_pool(name: str, module: str) -> dict:
    return {
        "name": name,
        "description": f"{name} cluster",
        "module": module,
        "maxInstance": 10,
        "variables": {"master_node": "head01", "log_dir": "inftraining_logs"},
        "docker": {"mount": ["/mnt/corpus:/root/corpus"]},
        "disabled": 0,
    }


@pytest.fixture
def site(tmp_path, redis_url):
    """The nmt-wizard site directory, one sshd host, and the environment of every process."""
    keys, [host], known_hosts = start_hosts(tmp_path / "hosts", 1)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text(known_hosts.read_text())
    port = free_port()
    directory = tmp_path / "site"
    directory.mkdir()
    (directory / "taskfiles").mkdir()
    (directory / "settings.ini").write_text(_settings_ini(redis_url))
    default = {**NMTWIZARD_DEFAULT, "callback_url": f"http://127.0.0.1:{port}"}
    (directory / "default.json").write_text(json.dumps(default))
    pools = {
        "DMssh": _ssh_pool("DMssh", host, keys.private_key, False),
        "DMoff": _ssh_pool("DMoff", host, keys.private_key, 1),
        "DMec2": _unsupported_pool("DMec2", "services.ec2"),
        "DMtorque": _unsupported_pool("DMtorque", "services.torque"),
    }
    for name, pool in pools.items():
        (directory / f"{name}.json").write_text(json.dumps(pool, indent=2))
    overrides = dict.fromkeys(_OVERRIDDEN, "")
    overrides.update(
        LAUNCHER_CONFIG=str(directory / "settings.ini"),
        HOME=str(home),  # the workers' ~/.ssh/known_hosts
        SNW_VAR_DIR=str(tmp_path / "var"),
        SNW_DEMO_PASSWORD=DEMO_PASSWORD,
        SNW_ADMIN_PASSWORD="admin-password-for-nmtwizard-settings",
        NMTWIZARD_TOKEN_MINTER="tasks_api.hooks:mint_task_token",
        NMTWIZARD_TOKEN_REVOKER="tasks_api.hooks:revoke_task_token",
    )
    yield directory, port, overrides
    host.stop()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def test_an_nmtwizard_site_directory_starts_a_launcher_and_workers(site):
    directory, port, overrides = site
    base = f"http://127.0.0.1:{port}"

    migrated = manage("migrate", "--noinput", "--verbosity", "0", **overrides)
    assert migrated.returncode == 0, migrated.stderr
    flask_warning = (
        f"{directory / 'settings.ini'}: [flask] debug, sqlalchemy_track_modifications ignored: "
        "SNW is not a Flask application (only SQLALCHEMY_DATABASE_URI and SECRET_KEY are read)"
    )
    assert migrated.stderr.count(flask_warning) == 1
    assert "[default] taskfile_dir, max_log_size accepted" in migrated.stderr
    assert (directory / "snw.sqlite3").is_file()  # sqlite:///snw.sqlite3, next to settings.ini
    assert manage("bootstrapdemo", **overrides).returncode == 0
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"} | overrides

    processes = {
        "launcher": [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        "DMssh": [sys.executable, "-m", "nmtwizard.worker", "DMssh", "--tick", "0.05"],
        "DMec2": [sys.executable, "-m", "nmtwizard.worker", "DMec2", "--tick", "0.05"],
    }
    logs = {name: (directory.parent / f"{name}.log").open("w+") for name in processes}
    running = {
        name: subprocess.Popen(argv, cwd=BASE_DIR, env=env, stderr=logs[name])
        for name, argv in processes.items()
    }
    try:
        until(lambda: _answers(f"{base}/status"), 60, "the launcher answers", interval=0.3)
        session = demo_session(base, DEMO_PASSWORD)

        def pools():
            return session.get(f"{base}/service/list", timeout=10).json()

        listed = until(
            lambda: (
                (p := pools())["DMssh"]["pid"] != "**NO WORKER**"
                and p["DMec2"]["pid"] != "**NO WORKER**"
                and p
            ),
            60,
            "both workers registered",
            interval=0.3,
        )
        assert sorted(listed) == ["DMec2", "DMoff", "DMssh", "DMtorque"]
        assert listed["DMssh"]["disabled"] is False and "unusable" not in listed["DMssh"]
        assert listed["DMssh"]["capacity"] == "2 (2)"
        assert listed["DMoff"]["disabled"] is True
        for name, module, what in (
            ("DMec2", "services.ec2", "AWS EC2 instances"),
            ("DMtorque", "services.torque", "a Torque cluster"),
        ):
            reason = f"module {module} ({what}) has no SNW service; " + (
                "use services.ssh (or service ssh, local)"
            )
            assert listed[name]["unusable"] == reason
            assert listed[name]["name"] == f"**INVALID CONFIG: {reason}"
            assert listed[name]["capacity"] == "0 (0)"

        def launch(pool: str) -> requests.Response:
            return session.post(f"{base}/task/launch/{pool}", json=DEMO_TASK, timeout=30)

        refused = launch("DMoff")
        assert refused.status_code == 400
        assert refused.json()["message"] == (
            "pool 'DMoff' is disabled (\"disabled\" in its configuration)"
        )
        refused = launch("DMec2")
        assert refused.status_code == 400
        assert refused.json()["message"].startswith(
            "pool 'DMec2' cannot run tasks: module services.ec2"
        )

        demo_task_runs(session, base, "DMssh")
        assert running["DMec2"].poll() is None  # the unusable pool's worker idles, no crash
    finally:
        for process in running.values():
            if process.poll() is None:
                process.terminate()
        for process in running.values():
            process.wait(timeout=30)
    outputs = {}
    for name, log in logs.items():
        log.seek(0)
        outputs[name] = log.read()
        log.close()
    for name in ("DMssh", "DMec2"):
        assert "taskfile_dir, max_log_size accepted" in outputs[name]  # the same warning
    assert "pool DMec2 is unusable" in outputs["DMec2"]
    assert "a-secret-key-kept" not in "".join(outputs.values())
