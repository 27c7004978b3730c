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
from pathlib import Path

import pytest

from tests.factories import EntityFactory, UserFactory
from tests.helpers import until
from tests.services.contract_pool import contract_pool as make_contract_pool
from tests.services.contract_pool import record_task_tokens

CURRENT, LEGACY = "snw/contract", "snw/contract-legacy"


def _legacy_numbering(data: dict, default: dict) -> None:
    """The legacy image counts its GPUs from 1 (and checks it from its environment)."""
    default["docker"]["envvar"]["specific"][LEGACY] = {"CONTRACT_GPU_NUMBERING": "1-indexed"}
    data["variables"]["gpu_numbering_by_image"] = {LEGACY: "1-indexed"}


@pytest.fixture(params=["local", "ssh"])
def contract_pool(request, live_server, transactional_db, redis_client, tmp_path):
    UserFactory(entity=EntityFactory(entity_code="AA"), user_code="TRN", roles=["trainer"])
    pool = make_contract_pool(
        request.param, request, tmp_path, live_server.url, (CURRENT, LEGACY), _legacy_numbering
    )
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
    minted = record_task_tokens()
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
    assert "contract: statistics {} posted (200)" in logs[a]  # empty statistics accepted
    assert tasks[a]["statistics"] == {"contract": {"command": "train", "fetched": 1, "gpus": "0,1"}}
    assert "statistics" not in tasks[b]  # no --statistics_url for an image without them
    assert logs[b].count("contract: ok another task refuses this token (403)") == 2
    for task_id in (a, b, c, d):
        model = models / task_id / "checkpoint.txt"
        assert model.read_text().startswith(f"model of {task_id} built by snw/contract")
