"""End to end over HTTP: log in, launch on a ``local`` (process runtime) pool, poll to running,
read the log incrementally, wait for completion (reported by the task's own callbacks), delete.

A real engine worker runs in a thread of the test process; the task's runner calls back the
live server with the task-restricted token the worker minted.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from nmtwizard.services import local  # noqa: F401  (registers the `local` service)
from nmtwizard.worker import Worker
from tasks_api.engine import get_engine
from tests.factories import EntityFactory, UserFactory
from tests.helpers import until
from tests.tasks_api.conftest import DEFAULT, write_pools

SCRIPT = "echo start; sleep 1; echo middle; sleep 1; echo end"


@pytest.mark.slow
def test_launch_follow_complete_delete(live_server, transactional_db, redis_client, tmp_path):
    UserFactory(entity=EntityFactory(entity_code="AA"), user_code="TRN", roles=["trainer"])
    pool = {
        "name": "aa_local",
        "description": "local processes",
        "service": "local",
        "callback_url": live_server.url,
        "callback_interval": 1,
        "variables": {
            "runtime": "process",
            "work_dir": str(tmp_path / "work"),
            "terminate_grace": 1,
            "server_pool": [{"name": "localhost", "gpus": [0], "ncpus": 2}],
        },
    }
    config_dir = write_pools(tmp_path / "config", [pool], DEFAULT)
    engine = get_engine()
    engine.sync_pool_configs(config_dir)
    worker = Worker(
        engine.store, "aa_local", config_dir=config_dir, tick=0.02, refresh_counter=1, check_delay=5
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        base = live_server.url
        login = requests.get(f"{base}/auth/token", auth=("AATRN", "secret-password"), timeout=30)
        assert login.status_code == 200, login.text
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {login.json()['token']}"

        content = {
            "docker": {"image": "nmtwizard/sh", "tag": "latest", "command": ["sh", "-c", SCRIPT]},
            "exec_mode": True,
            "ngpus": 0,
            "ncpus": 1,
        }
        launched = session.post(
            f"{base}/task/launch/aa_local", files={"content": (None, json.dumps(content))}
        )
        assert launched.status_code == 200, launched.text
        task_id = launched.json().split("\t")[1]
        assert task_id.startswith("AATRN_")

        def status():
            return session.get(f"{base}/task/status/{task_id}", timeout=30).json()

        until(lambda: status()["status"] in ("running", "terminating", "stopped"), 60, "running")

        log, offset, reads = b"", 0, 0
        while b"\nend\n" not in log:  # not the COMMAND line the log starts with
            response = session.get(f"{base}/task/log/{task_id}?offset={offset}", timeout=30)
            assert response.status_code == 200
            log += response.content
            assert int(response.headers["X-Log-Offset"]) == offset + len(response.content)
            offset = int(response.headers["X-Log-Offset"])
            reads += 1
            assert reads < 300, f"log never completed: {log!r}"
            time.sleep(0.2)
        assert log.index(b"\nstart\n") < log.index(b"\nmiddle\n") < log.index(b"\nend\n")

        final = until(lambda: (s := status())["status"] == "stopped" and s, 60, "stopped")
        assert final["message"] == "completed"
        deleted = session.delete(f"{base}/task/{task_id}", timeout=30)
        assert deleted.status_code == 200, deleted.text
        assert session.get(f"{base}/task/status/{task_id}", timeout=30).status_code == 404
    finally:
        worker.request_exit(0)
        thread.join(30)
