"""The contract-test image (``contract_image.py``) run by SNW, end to end.

A live launcher (``live_server``), a real engine worker in a thread, and the image launched
through the ``local`` process service and through the ``ssh`` pool of test sshd hosts: every
entrypoint argument arrives (the argv is written out here from the reference), every callback
is recorded by SNW (beats with the container id, the log, the uploaded file, statistics), the
model lands in the model storage, and the task's token opens nothing of another task.

Tasks are written with ``exec_mode: false`` straight into the store (the launch records the
flag with the chains work of issue 13).
"""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest
from django.db import connection

from accounts.tokens import mint_task_token, revoke_task_token
from nmtwizard import hooks
from nmtwizard.worker import Worker
from tasks_api.engine import get_engine
from tests.factories import EntityFactory, UserFactory
from tests.helpers import until
from tests.services.remote_pool import CONTRACT_IMAGE, enqueue
from tests.tasks_api.conftest import DEFAULT, write_pools

RELATIVE_PROGRAM = "tests/services/contract_image.py"  # the local worker runs from the repo root
CURRENT, LEGACY = "snw/contract", "snw/contract-legacy"


def _contract_keys(data: dict, live_url: str, models: Path, program: str) -> dict:
    """The pool keys of the contract, written from the reference."""
    data.update(
        callback_url=live_url,
        callback_interval=1,
        storages={
            "launcher": {
                "type": "http",
                "get_pattern": "<CALLBACK_URL>/task/file/<TASK_ID>/%s",
                "post_pattern": "<CALLBACK_URL>/task/file/<TASK_ID>/%s",
            },
            "models": {"type": "local", "basedir": str(models), "default_ms": True},
        },
        docker={
            "envvar": {
                "LANG": "C.UTF-8",
                "specific": {LEGACY: {"CONTRACT_GPU_NUMBERING": "1-indexed"}},
            }
        },
    )
    data["variables"].update(
        terminate_grace=1,
        gpu_numbering_by_image={LEGACY: "1-indexed"},
        entrypoints={CURRENT: ["python3", program], LEGACY: ["python3", program]},
    )
    return data


class ContractPool:
    """A pool carrying the contract keys; its worker (a thread) starts when the tasks wait."""

    def __init__(self, name: str, program: str, models: Path, config_dir: Path):
        self.name, self.program, self.models = name, program, models
        self.config_dir = config_dir
        self.store = get_engine().store
        self.worker: Worker | None = None
        self.thread: threading.Thread | None = None

    def launch(self, image, command, ngpus, *, statistics=False, files=None) -> str:
        return enqueue(
            self.store,
            self.name,
            command,
            ngpus=ngpus,
            image=image,
            tag="1.17.0",
            files=files,
            trainer_id="AATRN",
            content={"exec_mode": False, "support_statistics": statistics},
        )

    def start_worker(self) -> None:
        self.worker = Worker(
            self.store, self.name, config_dir=self.config_dir, tick=0.02, refresh_counter=1
        )
        self.thread = threading.Thread(target=self.worker.run, daemon=True)
        self.thread.start()

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.request_exit(0)
            self.thread.join(30)
            if hasattr(self.worker.service, "close"):
                self.worker.service.close()


@pytest.fixture(params=["local", "ssh"])
def contract_pool(request, live_server, transactional_db, redis_client, tmp_path):
    UserFactory(entity=EntityFactory(entity_code="AA"), user_code="TRN", roles=["trainer"])
    if request.param == "ssh":
        data = json.loads(json.dumps(request.getfixturevalue("remote_hosts").data))
        program = str(CONTRACT_IMAGE)  # an ssh login starts in its home: absolute here
    else:
        data = {
            "name": "aa_contract",
            "description": "the contract image as local processes",
            "service": "local",
            "variables": {
                "runtime": "process",
                "work_dir": str(tmp_path / "work"),
                "server_pool": [{"name": "localhost", "gpus": [0, 1, 2, 3], "ncpus": 4}],
            },
        }
        program = RELATIVE_PROGRAM
    data = _contract_keys(data, live_server.url, tmp_path / "models", program)
    config_dir = write_pools(tmp_path / "config", [data], DEFAULT)
    get_engine().sync_pool_configs(config_dir)
    pool = ContractPool(data["name"], program, tmp_path / "models", config_dir)
    yield pool
    pool.stop_worker()


@pytest.mark.slow
def test_contract_image_end_to_end(contract_pool, live_server):
    pool, store, models = contract_pool, contract_pool.store, contract_pool.models
    conf = b'{"source": "en", "target": "fr"}\n'
    command_a = [
        "train", "--fetch", "conf.json", "--compare", "${TMP_DIR}/conf.json",
        "--upload", "result.txt", "--seconds", "1.5",
    ]  # fmt: skip
    a = pool.launch(CURRENT, command_a, 2, statistics=True, files={"conf.json": conf})
    b = pool.launch(LEGACY, ["train", "--other_task", a, "--seconds", "1.5"], 0)
    c = pool.launch(LEGACY, ["train"], 2)
    d = pool.launch(CURRENT, ["train"], 0)
    unmapped = pool.launch("snw/unmapped", ["train"], 0)
    minted = {}

    def mint(task_id, owner):
        try:
            minted[task_id] = mint_task_token(task_id, owner)
        finally:
            connection.close()  # a worker thread's own connection: the test database is dropped
        return minted[task_id]

    hooks.set_token_hooks(minter=mint, revoker=revoke_task_token)
    pool.start_worker()

    def stopped(task_id):
        return store.get(task_id)["status"] == "stopped"

    until(lambda: all(stopped(t) for t in (a, b, c, d, unmapped)), 90, "every task stopped")
    tasks = {t: store.get(t) for t in (a, b, c, d, unmapped)}
    logs = {t: store.read_log(t)[0].decode() for t in tasks}

    # -- the unmapped image fails at launch, naming the key to set
    assert tasks[unmapped]["message"] == "launch_error"
    assert "variables.entrypoints['snw/unmapped']" in logs[unmapped]

    host = live_server.url.split("://", 1)[1]
    for task_id in (a, b, c, d):
        task, log = tasks[task_id], logs[task_id]
        assert task["message"] == "completed", log
        assert "contract: all checks passed" in log
        token = minted[task_id]
        # the log starts with the command, the token masked; never the token itself
        assert log.startswith(f"COMMAND: python3 {pool.program} -s ")
        assert "http://[[private]]:x@" in log.splitlines()[0]
        # the image prints its beat URL (as nmt-wizard-docker's beat service logs it): masked
        assert f"contract: beating to http://[[private]]:x@{host} every 1s" in log
        assert token not in log and token not in json.dumps(task)
        # beats of the image itself (the runner's beats carry no container id)
        assert task["container_id"] == socket.gethostname()

    # -- every argument arrived, in the reference's order

    def seen(task_id):
        workdir = Path(tasks[task_id]["job"]["workdir"])
        return json.loads((workdir / "contract-seen.json").read_text()), workdir

    def storages(task_id):
        cb = f"http://{minted[task_id]}:x@{host}"
        return (
            '{"launcher": {"type": "http", '
            f'"get_pattern": "{cb}/task/file/{task_id}/%s", '
            f'"post_pattern": "{cb}/task/file/{task_id}/%s"}}, '
            f'"models": {{"type": "local", "basedir": "{models}", "default_ms": true}}}}'
        )

    seen_a, workdir_a = seen(a)
    cb_a = f"http://{minted[a]}:x@{host}"
    assert seen_a["argv"] == [
        "-s", "-",
        "-g", "0,1",
        "-t", a,
        "-b", cb_a, "-bi", "1",
        "--statistics_url", f"{cb_a}/task/stat/{a}",
        "-i", "snw/contract:1.17.0",
        "-ms", "models:",
        "train", "--fetch", "conf.json", "--compare", f"{workdir_a}/files/conf.json",
        "--upload", "result.txt", "--seconds", "1.5",
    ]  # fmt: skip
    assert seen_a["storages"] == storages(a)  # read from stdin (-s -)
    assert seen_a["env"] == {
        "CUDA_VISIBLE_DEVICES": ",".join(tasks[a]["job"]["gpus"]),
        "NB_CPU": "1",
        "TMP_DIR": f"{workdir_a}/files",
    }
    seen_b, workdir_b = seen(b)
    cb_b = f"http://{minted[b]}:x@{host}"
    assert seen_b["argv"] == [
        "-s", "-",
        "-g", "0",
        "-t", b,
        "-b", cb_b, "-bi", "1",
        "-i", "snw/contract-legacy:1.17.0",
        "-ms", "models:",
        "train", "--other_task", a, "--seconds", "1.5",
    ]  # fmt: skip
    assert seen_b["storages"] == storages(b)  # read from stdin (-s -)
    assert seen_b["env"] == {
        "CUDA_VISIBLE_DEVICES": "",
        "NB_CPU": "1",
        "TMP_DIR": f"{workdir_b}/files",
        "CONTRACT_GPU_NUMBERING": "1-indexed",
    }
    assert seen(c)[0]["argv"][2:4] == ["-g", "1,2"]
    assert "-g" not in seen(d)[0]["argv"] and "--gpuid" not in seen(d)[0]["argv"]

    # -- what the callbacks left in SNW
    assert "contract: ok fetched conf.json (200) as in TMP_DIR" in logs[a]
    assert store.get_file(a, "result.txt") == f"uploaded by {a}\n".encode()
    assert tasks[a]["statistics"] == {"contract": {"fetched": 1, "gpus": "0,1"}}
    assert "statistics" not in tasks[b]  # no --statistics_url for an image without them
    assert logs[b].count("contract: ok another task refuses this token (403)") == 2
    for task_id in (a, b, c, d):
        model = models / task_id / "checkpoint.txt"
        assert model.read_text().startswith(f"model of {task_id} built by snw/contract")
