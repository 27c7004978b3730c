"""What a task prints of its environment is masked in its log, in both modes.

The pool's ``[[private:…]]`` values reach a task unmarked (``docker.envvar`` in its
environment; in exec mode the storages in ``STORAGES``, with the task token in the callback URL
there): a task printing them shows ``[[private]]`` in its log, never the value.
"""

from __future__ import annotations

import json

import pytest

from tests.services.remote_pool import CONFIG_DIR, enqueue

TOKEN = "tok-MASKED-5d1e8b"
API_KEY = "env-SECRET-42"
S3_KEY = "s3-SECRET-key"
CALLBACK = "http://127.0.0.1:9"  # nothing listens: the worker polls the log instead


def _pool_data(tmp_path) -> dict:
    data = json.loads((CONFIG_DIR / "local_demo.json").read_text())
    data["variables"].update(
        work_dir=str(tmp_path / "tasks"),
        terminate_grace=1,
        entrypoints={"snw/test": ["sh", "-c", 'echo "K=$API_KEY"; cat', "entry"]},
    )
    data.update(
        callback_url=CALLBACK,
        docker={"envvar": {"API_KEY": f"[[private:{API_KEY}]]", "LANG": "C.UTF-8"}},
        storages={
            "launcher": {"type": "http", "get_pattern": "<CALLBACK_URL>/f/%s"},
            "s3": {"type": "s3", "secret_access_key": f"[[private:{S3_KEY}]]"},
        },
    )
    return data


@pytest.fixture
def runner(tmp_path, make_worker):
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "local_demo.json").write_text(json.dumps(_pool_data(tmp_path)))
    return make_worker("local_demo", config_dir)


STORAGES_SHOWN = (
    '{"launcher": {"type": "http", "get_pattern": "http://[[private]]:x@127.0.0.1:9/f/%s"}, '
    '"s3": {"type": "s3", "secret_access_key": "[[private]]"}}'
)


def _body(runner, task_id: str) -> str:
    task = runner.stopped(task_id)
    assert task["message"] == "completed"
    log = runner.log(task_id)
    for secret in (TOKEN, API_KEY, S3_KEY):
        assert secret not in log
    return log.split("\n", 1)[1]


def test_exec_mode_task_printing_its_storages_and_private_envvar(store, runner):
    command = ["sh", "-c", 'echo "S=$STORAGES"; echo "K=$API_KEY"; echo "T=$TASK_TOKEN"']
    task_id = enqueue(store, "local_demo", command, ngpus=0, token=TOKEN)
    assert _body(runner, task_id) == f"S={STORAGES_SHOWN}\nK=[[private]]\nT=[[private]]\n"


def test_contract_mode_task_printing_its_private_envvar_and_storages(store, runner):
    task_id = enqueue(
        store, "local_demo", ["train"], ngpus=0, token=TOKEN, content={"exec_mode": False}
    )
    assert _body(runner, task_id) == f"K=[[private]]\n{STORAGES_SHOWN}"
