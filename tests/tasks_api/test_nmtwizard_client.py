"""Replays of what nmt-wizard's client (``client/launcher.py``, v1.10.2 and HEAD) sends and
reads, for ``ls -v``, ``lt``, ``status``, ``launch``, ``terminate``, ``dt``, ``file``, ``log``.

Requests are built as the client builds them: HTTP Basic with the token as user name, the
query flags it always sends (``all=False``, ``with_parent=False``), the launch as form fields
``content`` (JSON text), ``auto_patch_envvar`` and the files — multipart with a file,
urlencoded without one. The assertions name each field the client reads and the type its
code needs (it calls ``float()``, ``int()``, ``len()``, ``", ".join()`` and ``json.loads()``
on them), written out here from the client's code.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.tokens import temporary_token_create
from tests.tasks_api.helpers import run_worker_until

IMAGE = {"registry": "auto", "image": "nmtwizard/echo", "tag": "v1"}


@pytest.fixture
def wizard(world, pools):
    """A Django test client sending what the nmt-wizard client sends, as A's trainer."""
    token = temporary_token_create(user=world["trainer_a"]).token
    credentials = base64.b64encode(f"{token}:x".encode()).decode()
    return Client(HTTP_AUTHORIZATION=f"Basic {credentials}")


def _content(command: list[str], **changes) -> str:
    """The ``content`` form field of HEAD's ``launch`` (v1.10.2 sends the same minus the
    ``ncpus_*`` keys)."""
    content = {
        "docker": {**IMAGE, "command": command},
        "wait_after_launch": 2,
        "trainer_id": "AATRN",
        "options": {},
        "ngpus": 1,
        "ncpus": None,
        "ncpus_prepr": None,
        "ncpus_train": None,
        "ncpus_trans": None,
        "iterations": 1,
    }
    content.update(changes)
    return json.dumps(content)


def _launch(wizard, command: list[str], **changes) -> str:
    """``launch`` without a file: requests sends the form urlencoded."""
    form = {"content": _content(command, **changes), "auto_patch_envvar": "true"}
    response = wizard.post(
        "/task/launch/aa_pool", urlencode(form), content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200, response.content
    line = response.json()
    assert isinstance(line, str)  # one task: one line, printed as is
    return line.split("\t")[1]


def test_launch_multipart_with_a_file(wizard, engine):
    """``launch -s aa_pool -i nmtwizard/echo:v1 -g 1 -- train --corpus /data/corpus.txt``:
    the file goes as a multipart field named by its base name, the argument becomes
    ``${TMP_DIR}/corpus.txt``."""
    command = ["train", "--corpus", "${TMP_DIR}/corpus.txt"]
    response = wizard.post(
        "/task/launch/aa_pool",
        {
            "content": _content(command),
            "auto_patch_envvar": "true",
            "corpus.txt": SimpleUploadedFile("corpus.txt", b"hello corpus\n"),
        },
    )
    assert response.status_code == 200, response.content
    kind, task_id, resources = response.json().split("\t")
    assert (kind, resources) == ("train", "ngpus: 1, ncpus: 1")
    assert task_id.startswith("AATRN_xxyy_")
    assert engine.get_file(task_id, "corpus.txt") == b"hello corpus\n"


def test_ls_verbose_answers_what_the_table_reads(wizard, engine):
    """``ls -v``: ``GET service/list?all=False``; per pool ``pid``, ``usage``, ``queued``,
    ``capacity``, ``busy``, ``name``; per host of ``detail`` ``busy`` (a string, compared
    with ''), ``usage`` (lines joined with newlines), ``reserved``, ``capacity`` (two ints
    for '(%d,%d)')."""
    assert wizard.get("/service/list", {"minimal": "True"}).json() == {
        "aa_pool": {"name": "aa_pool test pool"},
        "mixed": {"name": "mixed test pool"},
    }
    task_id = _launch(wizard, ["train"], ncpus=2)
    run_worker_until(engine, "aa_pool", lambda: engine.get_task(task_id)["status"] == "running")
    engine.disable_host("aa_pool", "h2", "DISABLED")

    pool = wizard.get("/service/list?all=False").json()["aa_pool"]
    assert pool["name"] == "aa_pool test pool"
    assert pool["usage"] == "1 (2)" and pool["capacity"] == "4 (8)" and pool["queued"] == 0
    assert isinstance(pool["pid"], str) and isinstance(pool["busy"], int | str)
    host = pool["detail"]["h1"]
    assert {k: host[k] for k in ("busy", "reserved", "capacity", "usage")} == {
        "busy": "",
        "reserved": "",
        "capacity": [2, 4],
        "usage": [f"train {task_id}: 1 (2)"],
    }
    assert (host["avail_gpus"], host["avail_cpus"]) == (1, 2)
    disabled = pool["detail"]["h2"]
    assert (disabled["busy"], disabled["usage"], disabled["capacity"]) == (
        "disabled: DISABLED",
        [],
        [2, 4],
    )
    assert (disabled["avail_gpus"], disabled["avail_cpus"]) == (2, 4)


def test_ls_on_a_shared_pool_hides_other_entities_tasks(clients, pools, engine):
    """On ``mixed`` (AA and BB), B's trainer sees what A's task holds, not its id."""
    launched = clients["trainer_a"].post(
        "/task/launch/mixed", {"content": _content(["train"], ncpus=2)}, format="multipart"
    )
    task_id = launched.json().split("\t")[1]
    run_worker_until(engine, "mixed", lambda: engine.get_task(task_id)["status"] == "running")
    detail = clients["trainer_b"].get("/service/list?all=False").json()["mixed"]["detail"]
    assert detail["h1"]["usage"] == ["other entities: 1 (2)"] and detail["h2"]["usage"] == []
    assert task_id not in json.dumps(detail)


def test_lt_rows_carry_what_the_table_reads(wizard, engine):
    """``lt``: ``GET task/list/AATRN*?with_parent=False``; each row's ``launched_time``
    (``float()``), ``alloc_resource`` or else ``resource`` (a string, cut to 25),
    ``alloc_lgpu``/``alloc_lcpu`` (``len()`` when not null), ``image`` (a string with '/'),
    ``task_id``, ``service``, ``priority`` (``int()``), ``status``, ``message``, ``owner``."""
    running = _launch(wizard, ["train"], ncpus=2)
    run_worker_until(engine, "aa_pool", lambda: engine.get_task(running)["status"] == "running")
    queued = _launch(wizard, ["train"], options={"server": "h2"}, priority=3)

    rows = {r["task_id"]: r for r in wizard.get("/task/list/AATRN*?with_parent=False").json()}
    assert set(rows) == {queued, running}
    first = rows[queued]
    assert {k: first[k] for k in ("resource", "alloc_resource", "alloc_lgpu", "alloc_lcpu")} == {
        "resource": "h2",
        "alloc_resource": None,
        "alloc_lgpu": None,
        "alloc_lcpu": None,
    }
    assert (first["service"], first["priority"], first["image"]) == (
        "aa_pool",
        3,
        "nmtwizard/echo:v1",
    )
    assert (first["status"], first["message"], first["owner"], first["model"]) == (
        "queued",
        None,
        "AA",
        "-",
    )
    assert isinstance(first["launched_time"], float)
    second = rows[running]
    assert second["resource"] == "auto" and second["alloc_resource"] in ("h1", "h2")
    assert len(second["alloc_lgpu"]) == 1 and len(second["alloc_lcpu"]) == 2
    assert all(isinstance(slot, str) for slot in second["alloc_lgpu"] + second["alloc_lcpu"])
    # ``lt -pa`` (``with_parent=True``) reads ``parent``: a string, '' without one.
    assert {r["parent"] for r in wizard.get("/task/list/AATRN*?with_parent=True").json()} == {""}


def test_status_answers_what_the_text_view_reads(wizard, engine):
    """``status``: ``current_time`` and every ``*_time`` go through ``float()`` (so none may
    be null), ``alloc_lgpu``/``alloc_lcpu`` through ``", ".join()`` (lists of strings when
    present), ``files`` through ``', '.join()``, ``content`` through ``json.loads()``."""
    task_id = _launch(wizard, ["-m", "AATRN_ende_Base_01", "train"], ncpus=2)
    queued = wizard.get(f"/task/status/{task_id}").json()
    times = sorted(k for k in queued if k.endswith("_time"))
    assert times == ["current_time", "launched_time", "queued_time"]
    assert isinstance(queued["current_time"], int) and isinstance(queued["queued_time"], float)
    assert "alloc_lgpu" not in queued and "alloc_lcpu" not in queued
    assert (queued["type"], queued["status"], queued["service"], queued["resource"]) == (
        "train",
        "queued",
        "aa_pool",
        "auto",
    )
    assert queued["files"] == []
    content = json.loads(queued["content"])
    assert content["docker"] == {
        "image": "nmtwizard/echo",
        "registry": "hub",
        "tag": "v1",
        "command": ["-m", "AATRN_ende_Base_01", "train"],
    }

    run_worker_until(engine, "aa_pool", lambda: engine.get_task(task_id)["status"] == "running")
    running = wizard.get(f"/task/status/{task_id}").json()
    assert None not in running.values()
    assert {"allocated_time", "running_time"} <= set(running)
    assert all(isinstance(running[k], float | int) for k in running if k.endswith("_time"))
    assert len(running["alloc_lgpu"]) == 1 and len(running["alloc_lcpu"]) == 2
    assert all(isinstance(slot, str) for slot in running["alloc_lgpu"] + running["alloc_lcpu"])
    assert running["alloc_resource"] in ("h1", "h2")
    fields = wizard.get(f"/task/status/{task_id}?fields=status,message").json()
    assert (fields["status"], fields["message"]) == ("running", None)


def test_terminate_then_dt(wizard, engine):
    """``terminate`` prints ``message``; ``dt -p AATRN`` lists ``GET task/list/AATRN*`` (no
    query) reading ``launched_time``, ``task_id``, ``image``, ``status``, ``message``, then
    sends ``DELETE task/<id>`` for each row and needs a 200."""
    task_id = _launch(wizard, ["train"])
    assert wizard.get(f"/task/terminate/{task_id}").json()["message"] == f"terminating {task_id}"
    assert wizard.get(f"/task/terminate/{task_id}").json()["message"] == (
        f"{task_id} already stopped"
    )
    (row,) = wizard.get("/task/list/AATRN*").json()
    assert (row["task_id"], row["image"], row["status"], row["message"]) == (
        task_id,
        "nmtwizard/echo:v1",
        "stopped",
        "aborted",
    )
    assert isinstance(row["launched_time"], float)
    deleted = wizard.delete(f"/task/{task_id}")
    assert deleted.status_code == 200 and deleted.json() == {"message": f"deleted {task_id}"}
    assert wizard.get("/task/list/AATRN*").json() == []


def test_file_and_log_answer_raw_bytes(wizard, engine):
    """``file -f NAME``: ``GET task/file/<id>/<name>`` (raw bytes; the ``/file/...`` alias
    answers the same and accepts uploads); ``log``: ``GET task/log/<id>`` (text)."""
    task_id = _launch(wizard, ["train"])
    assert wizard.post(
        f"/file/{task_id}/out/scores.txt", b"BLEU 31.5\n", content_type="application/octet-stream"
    ).json() == {"message": "ok"}
    for path in (f"/task/file/{task_id}/out/scores.txt", f"/file/{task_id}/out/scores.txt"):
        response = wizard.get(path)
        assert response.status_code == 200 and response.content == b"BLEU 31.5\n"
        assert response["Content-Type"] == "application/octet-stream"
    missing = wizard.get(f"/file/{task_id}/nope.txt")
    assert missing.status_code == 404 and "nope.txt" in missing.json()["message"]
    engine.append_log(task_id, b"epoch 1\n")
    log = wizard.get(f"/task/log/{task_id}")
    assert log.status_code == 200 and log.content.decode("utf-8") == "epoch 1\n"


def test_file_alias_keeps_the_access_rules(clients, task_a, engine):
    """Another entity's trainer neither reads nor writes through ``/file/...``."""
    engine.put_file(task_a, "model.txt", b"secret")
    outsider = clients["trainer_b"]
    assert outsider.get(f"/file/{task_a}/model.txt").status_code == 404
    written = outsider.post(
        f"/file/{task_a}/model.txt", b"evil", content_type="application/octet-stream"
    )
    assert written.status_code == 404 and engine.get_file(task_a, "model.txt") == b"secret"


def test_a_task_posts_empty_statistics(world, task_a, engine):
    """An image with nothing to report posts ``{"statistics": {}}`` with its task token."""
    token = temporary_token_create(user=world["trainer_a"]).token
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    body = {"task_id": task_a, "start_time": 100.0, "end_time": 160.5, "statistics": {}}
    response = client.post(f"/task/stat/{task_a}", body, content_type="application/json")
    assert response.status_code == 200, response.content
    assert (engine.get_task(task_a)["statistics"], engine.get_task(task_a)["duration"]) == (
        {},
        60.5,
    )


# =============================================================================
# HEAD's launch keys beyond v1.10.2's
# =============================================================================
def test_a_dependency_makes_the_launch_wait_and_keeps_the_model(wizard, engine):
    """``launch --dependency <task>``: the task waits for that task's end (HEAD's server makes
    it the first task's parent); the ``-m`` model of the command is not replaced."""
    first = _launch(wizard, ["train"])
    command = ["-m", "AATRN_ende_Base_01", "train"]
    waiting = _launch(wizard, command, dependency=first)

    status = wizard.get(f"/task/status/{waiting}").json()
    assert (status["parent"], status["status"]) == (first, "launched")
    assert json.loads(status["content"])["docker"]["command"] == command


def test_a_dependency_on_a_task_one_cannot_read_answers_as_a_missing_one(clients, wizard):
    theirs = _launch(wizard, ["train"])
    missing = "AATRN_xxyy_Nope_01_0123456789"
    answers = [
        clients["trainer_b"].post(
            "/task/launch/bb_pool",
            {"content": _content(["train"], dependency=task_id), "auto_patch_envvar": "true"},
        )
        for task_id in (theirs, missing)
    ]
    assert [a.status_code for a in answers] == [404, 404]
    assert answers[0].json()["message"] == answers[1].json()["message"].replace(missing, theirs)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("ncpus_train", 4, "ncpus_train: SNW does not set CPUs per task type; use ncpus"),
        ("ncpus_prepr", 2, "ncpus_prepr: SNW does not set CPUs per task type; use ncpus"),
        ("ncpus_trans", 1, "ncpus_trans: SNW does not set CPUs per task type; use ncpus"),
        ("tags", [{"tag": "prod"}], "tags: SNW keeps no catalog of model tags"),
    ],
)
def test_head_launch_keys_snw_does_not_implement_are_refused_naming_the_key(
    wizard, engine, key, value, message
):
    """``launch -c_train 4`` or ``--tags prod``: refused rather than half-honoured. Left out or
    null (as the client sends them unless asked), they are accepted (every other launch here)."""
    form = {"content": _content(["train"], **{key: value}), "auto_patch_envvar": "true"}
    response = wizard.post(
        "/task/launch/aa_pool", urlencode(form), content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith(message)
    assert engine.list_tasks("AATRN*") == []
