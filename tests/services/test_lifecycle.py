"""End-to-end task lifecycle through a real engine worker, on ``local`` and on ``ssh``.

``ssh`` runs against the ``remote_test`` pool: 4 real sshd hosts on 127.0.0.1 with their own
host keys; ``local`` against a process-runtime pool on this machine. No GPU exists here: the
allocated ids are what the task sees in ``CUDA_VISIBLE_DEVICES``.
"""

from __future__ import annotations

import json
import os
import pwd
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nmtwizard.services.hostexec import LogSync
from tests.services.remote_pool import CONFIG_DIR, enqueue, processes

SECRET = "tok-SECRET-7f3a9c1e"
PRINT_GPUS = [
    "sh",
    "-c",
    "echo CUDA=$CUDA_VISIBLE_DEVICES NV=$NVIDIA_VISIBLE_DEVICES; "
    "echo token-length=${#TASK_TOKEN}; sleep 0.5; echo done",
]


@pytest.fixture(params=["local", "ssh"])
def pool(request, tmp_path, store, make_worker):
    """A worker on a process-runtime pool of the parametrised service."""
    if request.param == "ssh":
        remote = request.getfixturevalue("remote_hosts")
        data = json.loads(json.dumps(remote.data))
    else:
        data = json.loads((CONFIG_DIR / "local_demo.json").read_text())
        data["variables"]["work_dir"] = str(tmp_path / "local-tasks")
        data["variables"]["server_pool"][0]["gpus"] = [0, 1, 2, 3]
        remote = None
    data["variables"]["terminate_grace"] = 1
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    return _Pool(request.param, data, config_dir, store, make_worker, remote)


class _Pool:
    def __init__(self, kind, data, config_dir, store, make_worker, remote):
        self.kind, self.data, self.config_dir = kind, data, config_dir
        self.store, self.make_worker, self.remote = store, make_worker, remote
        self.name = data["name"]

    def worker(self, **changes):
        self.data.update(changes)
        (self.config_dir / f"{self.name}.json").write_text(json.dumps(self.data))
        return self.make_worker(self.name, self.config_dir)

    def host(self):
        return "host1" if self.kind == "ssh" else "localhost"

    def workdir(self, task_id):
        return Path(self.store.get(task_id)["job"]["workdir"])

    def slots(self, host):
        gpus, cpus = self.store.slots(self.name, [host])[host]
        return gpus, cpus


class CallbackServer:
    """A stand-in for the launcher's task callback routes (issue 7): records every request and
    copies PATCHed log bytes with the same offset check the route must use."""

    def __init__(self, store):
        self.requests = []
        sync = LogSync(store.redis, store.keys)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append((self.command, self.path, self.headers.get("Authorization")))
                if self.command == "PATCH" and "/task/log/" in self.path:
                    task_id = self.path.split("/task/log/")[1].split("?")[0]
                    offset = int(self.path.split("offset=")[1].split("&")[0])
                    sync.append(task_id, offset, body)
                self.send_response(200)
                self.end_headers()

            do_GET = do_PUT = do_PATCH = do_POST = _handle

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def callbacks(store):
    server = CallbackServer(store)
    yield server
    server.close()


def test_task_runs_with_its_gpus_streams_its_log_beats_and_completes(pool, callbacks, caplog):
    runner = pool.worker(callback_url=callbacks.url, callback_interval=1)
    task_id = enqueue(
        pool.store,
        pool.name,
        ["sh", "-c", 'echo "CUDA=$CUDA_VISIBLE_DEVICES"; sleep 1.6; echo done'],
        ngpus=2,
        token=SECRET,
    )
    running = runner.running(task_id)
    gpus = running["alloc_gpus"]
    line = f"\nCUDA={','.join(gpus)}\n"
    runner.until(lambda: line in runner.log(task_id), what="first output line, streamed")
    task = runner.stopped(task_id)
    assert task["message"] == "completed"
    assert runner.log(task_id).startswith("COMMAND: sh -c ")
    assert runner.log(task_id).splitlines().count("done") == 1  # never duplicated bytes
    assert pool.slots(task["job"]["host"]) == ({}, {})
    routes = {
        (method, path.split("?")[0].rsplit("/", 1)[0]) for method, path, _ in callbacks.requests
    }
    assert ("PUT", "/task/beat") in routes
    assert ("PATCH", "/task/log") in routes
    assert ("GET", f"/task/terminate/{task_id}?phase=completed") in {
        (m, p) for m, p, _ in callbacks.requests
    }
    assert {auth for _m, _p, auth in callbacks.requests} == {f"Bearer {SECRET}"}
    workdir = pool.workdir(task_id)
    for text in (runner.log(task_id), caplog.text, json.dumps(pool.store.get(task_id))):
        assert SECRET not in text
    if pool.kind == "local":
        assert (
            SECRET not in (workdir / "runner.log").read_text() + (workdir / "task.log").read_text()
        )


def test_the_token_a_task_prints_is_masked_in_its_log(pool, callbacks):
    """Even printed in two pieces a moment apart; a piece alone stays as printed."""
    runner = pool.worker(callback_url=callbacks.url, callback_interval=1)
    split_print = (
        'printf "token=%s" "${TASK_TOKEN%%SECRET*}"; sleep 0.5; '
        'printf "SECRET%s\\n" "${TASK_TOKEN#*SECRET}"; '
        'echo "url=http://$TASK_TOKEN:x@host"; printf "end=tok-"'
    )
    task_id = enqueue(pool.store, pool.name, ["sh", "-c", split_print], ngpus=0, token=SECRET)
    task = runner.stopped(task_id)
    assert task["message"] == "completed"
    body = runner.log(task_id).split("\n", 1)[1]
    assert body == "token=[[private]]\nurl=http://[[private]]:x@host\nend=tok-"
    if pool.kind == "local":
        assert SECRET not in (pool.workdir(task_id) / "task.log").read_text()


def test_logs_and_completion_without_callbacks(pool):
    runner = pool.worker()
    command = [*PRINT_GPUS[:2], PRINT_GPUS[2] + "; cat ${TMP_DIR}/sub/conf.txt"]
    files = {"sub/conf.txt": b"uploaded-content\n"}
    task_id = enqueue(pool.store, pool.name, command, ngpus=1, token=SECRET, files=files)
    task = runner.stopped(task_id)
    assert "uploaded-content" in runner.log(task_id)  # files sit where the task sees them
    assert task["message"] == "completed"
    log = runner.log(task_id)
    gpu = task["job"]["gpus"][0]
    assert f"CUDA={gpu} NV={gpu}" in log and "done" in log
    assert "token-length=0" in log  # no callback URL: the task gets no token either


def test_two_tasks_on_one_host_get_disjoint_gpus(pool):
    runner = pool.worker()
    options = {"server": pool.host()}
    command = ["sh", "-c", 'echo "CUDA=$CUDA_VISIBLE_DEVICES"; sleep 1']
    first = enqueue(pool.store, pool.name, command, ngpus=2, options=options)
    second = enqueue(pool.store, pool.name, command, ngpus=2, options=options)
    runner.until(
        lambda: all(pool.store.get(t)["status"] == "running" for t in (first, second)),
        what="both running",
    )
    seen = []
    for task_id in (first, second):
        task = runner.stopped(task_id)
        assert task["message"] == "completed" and task["job"]["host"] == pool.host()
        line = next(x for x in runner.log(task_id).splitlines() if x.startswith("CUDA="))
        seen.append(set(line[5:].split(",")))
        assert seen[-1] == set(task["job"]["gpus"])
    assert len(seen[0]) == len(seen[1]) == 2 and not seen[0] & seen[1]


SHOW_ENVIRONMENT = [
    "/bin/sh",
    "-c",
    'printf "HOME=%s LANG=%s PATH=%s SECRET=%s\\n" "$HOME" "$LANG" "$PATH" "${WORKER_SECRET:-no}"',
]


@pytest.mark.parametrize("exec_mode", [True, False], ids=["exec-mode", "contract"])
def test_a_process_task_gets_its_users_base_environment_never_the_workers(
    pool, monkeypatch, tmp_path, exec_mode
):
    """HOME, PATH and LANG of the user the runner runs as (LANG C.UTF-8 when it has none),
    in both modes; nothing else of the (``local``) worker's environment."""
    monkeypatch.setenv("WORKER_SECRET", "redis://:worker-SECRET@db")
    monkeypatch.delenv("LANG", raising=False)
    monkeypatch.delenv("LC_ALL", raising=False)
    if pool.kind == "local":
        monkeypatch.setenv("HOME", f"{tmp_path}/home")
        monkeypatch.setenv("PATH", "/usr/local/bin:/usr/bin:/bin")
    pool.data["variables"]["entrypoints"] = {"snw/env": SHOW_ENVIRONMENT}
    runner = pool.worker()
    if exec_mode:
        task_id = enqueue(pool.store, pool.name, SHOW_ENVIRONMENT, ngpus=0)
    else:
        content = {"exec_mode": False}
        task_id = enqueue(
            pool.store, pool.name, ["train"], ngpus=0, image="snw/env", content=content
        )
    task = runner.stopped(task_id)
    assert task["message"] == "completed"
    line = runner.log(task_id).splitlines()[1]
    if pool.kind == "local":
        assert line == (
            f"HOME={tmp_path}/home LANG=C.UTF-8 PATH=/usr/local/bin:/usr/bin:/bin SECRET=no"
        )
    else:  # an ssh session: the user's home, the PATH its sshd sets (its shell may prepend)
        bin_dir = pool.remote.host(task["job"]["host"]).bin
        home, lang, path, secret = line.split(" ")
        assert (home, lang, secret) == (
            f"HOME={pwd.getpwuid(os.getuid()).pw_dir}",
            "LANG=C.UTF-8",
            "SECRET=no",
        )
        assert path.startswith("PATH=")
        assert path.endswith(f"{bin_dir}:/usr/local/bin:/usr/bin:/bin")


def _group_members(pgid: int) -> list[int]:
    return [pid for pid, fields in processes() if int(fields[2]) == pgid]


def test_terminate_kills_the_process_tree(pool):
    runner = pool.worker()
    command = ["sh", "-c", "sleep 60 & sh -c 'sleep 61' & echo started; wait"]
    task_id = enqueue(pool.store, pool.name, command, ngpus=1)
    runner.running(task_id)
    runner.until(lambda: "started" in runner.log(task_id), what="task started")
    pgid = json.loads((pool.workdir(task_id) / "pid.json").read_text())["pgid"]
    assert len(_group_members(pgid)) >= 3
    pool.store.terminate(task_id, "aborted")
    task = runner.stopped(task_id)
    assert task["message"] == "aborted"
    assert _group_members(pgid) == []
    assert pool.slots(task["job"]["host"]) == ({}, {})


def test_vanished_process_is_detected(pool):
    runner = pool.worker()
    task_id = enqueue(pool.store, pool.name, ["sleep", "60"], ngpus=1)
    runner.running(task_id)
    record = json.loads((pool.workdir(task_id) / "pid.json").read_text())
    os.kill(record["monitor_pid"], 9)
    os.killpg(record["pgid"], 9)
    task = runner.stopped(task_id)
    assert task["message"] == "exited"
    assert "task lost on" in task["end_detail"] and "vanished" in task["end_detail"]
    assert "vanished" in runner.log(task_id)
    assert pool.slots(task["job"]["host"]) == ({}, {})
