"""Task routes: success and bad input (the error names the field), nmt-wizard shapes."""

from __future__ import annotations

import json

import pytest

from tests.tasks_api.conftest import launch_body


@pytest.fixture
def trainer(clients):
    return clients["trainer_a"]


# =============================================================================
# Launch
# =============================================================================
def test_launch_json_answers_nmt_wizard_line_and_forces_the_trainer_prefix(trainer, pools, engine):
    response = trainer.post(
        "/task/launch/aa_pool", launch_body(trainer_id="BBxyz", ncpus=3), format="json"
    )
    assert response.status_code == 200, response.content
    kind, task_id, resources = response.json().split("\t")
    assert kind == "train"
    assert task_id.startswith("AATRN_")
    assert resources == "ngpus: 1, ncpus: 3"
    task = engine.get_task(task_id)
    assert (task["entity"], task["user"], task["status"]) == ("AA", "AATRN", "queued")


def test_launch_multipart_with_files_and_a_chain(trainer, pools, engine):
    content = json.dumps(launch_body(iterations=2))
    response = trainer.post(
        "/task/launch/aa_pool",
        {"content": content, "corpus.txt": _upload(b"hello corpus")},
        format="multipart",
    )
    assert response.status_code == 200, response.content
    lines = response.json()
    assert isinstance(lines, list) and len(lines) == 2
    first = lines[0].split("\t")[1]
    assert engine.get_file(first, "corpus.txt") == b"hello corpus"
    assert engine.get_task(lines[1].split("\t")[1])["parent"] == first


def _upload(data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("corpus.txt", data)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (launch_body(docker={"image": "nmtwizard/x", "tag": "1"}), "command"),
        (launch_body(ngpus=-1), "ngpus"),
        (launch_body(ngpus=9), "no resource available"),
        (launch_body(iterations=0), "iterations"),
        (launch_body(totranslate=[["only-one"]]), "totranslate"),
        (launch_body(docker={"image": "other/x", "tag": "1", "command": ["train"]}), "registry"),
        (launch_body(entity_owner="BB"), "entity_owner"),
        ([1, 2], "content"),
    ],
)
def test_launch_bad_input_names_the_field(trainer, pools, body, field):
    response = trainer.post("/task/launch/aa_pool", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["message"]


def test_launch_multipart_without_content(trainer, pools):
    response = trainer.post("/task/launch/aa_pool", {"x": "1"}, format="multipart")
    assert response.status_code == 400
    assert "content" in response.json()["message"]


def test_launch_on_unknown_pool_is_404(trainer, pools):
    response = trainer.post("/task/launch/nope", launch_body(), format="json")
    assert response.status_code == 404
    assert response.json() == {"message": "unknown pool 'nope'"}


def test_launch_on_a_multi_entity_pool_sets_the_owner(clients, pools, engine, world):
    # B's trainer on the (AA, BB) pool: the owner is BB, the only entity they train for.
    response = clients["trainer_b"].post("/task/launch/mixed", launch_body(), format="json")
    assert response.status_code == 200, response.content
    assert engine.get_task(response.json().split("\t")[1])["entity"] == "BB"
    # the super admin trains for both: ambiguous unless entity_owner says
    admin = clients["superadmin"]
    response = admin.post("/task/launch/mixed", launch_body(), format="json")
    assert response.status_code == 400 and "entity_owner" in response.json()["message"]
    response = admin.post("/task/launch/mixed", launch_body(entity_owner="aa"), format="json")
    assert response.status_code == 200
    task_id = response.json().split("\t")[1]
    assert task_id.startswith("SAADM_") and engine.get_task(task_id)["entity"] == "AA"


# =============================================================================
# Status, list, log, files
# =============================================================================
def test_status_all_fields_and_selected_fields(trainer, task_a):
    body = trainer.get(f"/task/status/{task_a}").json()
    assert body["task_id"] == task_a and body["status"] == "queued"
    assert body["service"] == "aa_pool" and isinstance(body["launched_time"], float)
    assert "token" not in body and isinstance(body["current_time"], int)
    assert "running_time" not in body and "stopped_time" not in body  # unset: left out
    body = trainer.get(f"/task/status/{task_a}?fields=status,nothing").json()
    assert set(body) == {"task_id", "current_time", "status", "nothing"}
    assert body["nothing"] is None


def test_status_bad_fields_and_unknown_task(trainer, task_a):
    response = trainer.get(f"/task/status/{task_a}?fields=a;b")
    assert response.status_code == 400 and "fields" in response.json()["message"]
    assert trainer.get("/task/status/AATRN_nope").status_code == 404


def test_list_glob_filters_and_paging(trainer, make_task, engine):
    ids = [make_task() for _ in range(3)]
    engine.request_terminate(ids[0])
    rows = trainer.get("/task/list/AATRN*").json()
    assert [r["task_id"] for r in rows] == ids[::-1]
    assert rows[0]["service"] == "aa_pool" and rows[0]["image"] == "nmtwizard/echo:v1"
    assert rows[0]["model"] == "-" and rows[0]["owner"] == "AA"
    stopped = trainer.get("/task/list/-*?status=stopped").json()
    assert [r["task_id"] for r in stopped] == [ids[0]]
    page = trainer.get("/task/list/AATRN?offset=1&limit=1").json()
    assert [r["task_id"] for r in page] == [ids[1]]
    inner = trainer.get(f"/task/list/AA%3FRN_*{ids[2][-6:]}").json()
    assert [r["task_id"] for r in inner] == [ids[2]]
    assert trainer.get("/task/list/BB*").json() == []
    assert trainer.get("/task/list/-*?service=bb_pool").json() == []


@pytest.mark.parametrize("query", ["status=bogus", "limit=0", "offset=-1", "service=a/b"])
def test_list_bad_query_names_the_field(trainer, pools, query):
    response = trainer.get(f"/task/list/-*?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()["message"]


def test_log_incremental_reads(trainer, task_a):
    assert (
        trainer.patch(f"/task/log/{task_a}", b"one\n", content_type="text/plain").status_code == 200
    )
    response = trainer.get(f"/task/log/{task_a}")
    assert response.content == b"one\n" and response["X-Log-Offset"] == "4"
    trainer.patch(f"/task/log/{task_a}", b"two\n", content_type="text/plain")
    response = trainer.get(f"/task/log/{task_a}?offset=4")
    assert response.content == b"two\n" and response["X-Log-Offset"] == "8"
    response = trainer.get(f"/task/log/{task_a}?offset=8")
    assert response.content == b"" and response["X-Log-Offset"] == "8"
    bad = trainer.get(f"/task/log/{task_a}?offset=x")
    assert bad.status_code == 400 and "offset" in bad.json()["message"]


def test_log_append_with_host_offset_is_idempotent(trainer, task_a):
    url = f"/task/log/{task_a}?offset=0&duration=30"
    for _ in range(2):  # a retried delivery
        assert trainer.patch(url, b"abc", content_type="application/octet-stream").json() == {
            "message": "ok",
            "offset": 3,
        }
    trainer.patch(f"/task/log/{task_a}?offset=2", b"cde", content_type="application/octet-stream")
    assert trainer.get(f"/task/log/{task_a}").content == b"abcde"
    response = trainer.post(f"/task/log/{task_a}", b"fresh", content_type="text/plain")
    assert response.json()["offset"] == 5
    assert trainer.get(f"/task/log/{task_a}").content == b"fresh"


def test_oversize_log_and_file_are_413(trainer, task_a, settings):
    from tasks_api import constants

    big = b"x" * (constants.MAX_LOG_REQUEST + 1)
    response = trainer.patch(f"/task/log/{task_a}", big, content_type="text/plain")
    assert response.status_code == 413 and "limit" in response.json()["message"]
    big = b"x" * (constants.MAX_UPLOAD + 1)
    response = trainer.post(f"/task/file/{task_a}/big.bin", big, content_type="text/plain")
    assert response.status_code == 413


def test_files_upload_download_and_bad_names(trainer, task_a):
    url = f"/task/file/{task_a}/dir/a.txt"
    assert trainer.post(url, b"content", content_type="application/octet-stream").status_code == 200
    response = trainer.get(url)
    assert response.content == b"content"
    assert response["Content-Type"] == "application/octet-stream"
    status = trainer.get(f"/task/status/{task_a}").json()
    assert (status["files"], status["file_sizes"]) == (["dir/a.txt"], {"dir/a.txt": 7})
    bad = trainer.post(f"/task/file/{task_a}/../x", b"x", content_type="text/plain")
    assert bad.status_code in (400, 404)
    missing = trainer.get(f"/task/file/{task_a}/nope.txt")
    assert missing.status_code == 404 and "nope.txt" in missing.json()["message"]


def test_stat(trainer, task_a, engine):
    body = {"task_id": task_a, "start_time": 10, "end_time": 25, "statistics": {"bleu": 31.5}}
    assert trainer.post(f"/task/stat/{task_a}", body, format="json").status_code == 200
    task = engine.get_task(task_a)
    assert task["duration"] == 15 and task["statistics"] == {"bleu": 31.5}
    bad = trainer.post(f"/task/stat/{task_a}", {**body, "task_id": "other"}, format="json")
    assert bad.status_code == 400 and "task_id" in bad.json()["message"]
    empty = trainer.post(f"/task/stat/{task_a}", {**body, "statistics": {}}, format="json")
    assert empty.status_code == 200 and engine.get_task(task_a)["statistics"] == {}
    bad = trainer.post(f"/task/stat/{task_a}", {**body, "statistics": [1]}, format="json")
    assert bad.status_code == 400 and "statistics" in bad.json()["message"]
    bad = trainer.post(f"/task/stat/{task_a}", b"", content_type="application/json")
    assert bad.status_code == 400 and "statistics empty" in bad.json()["message"]


# =============================================================================
# Beat, terminate, delete
# =============================================================================
def test_beat(trainer, task_a):
    response = trainer.put(f"/task/beat/{task_a}?duration=30&container_id=abc")
    assert response.json() == {"message": "ok", "status": "queued"}
    bad = trainer.put(f"/task/beat/{task_a}?duration=-1")
    assert bad.status_code == 400 and "duration" in bad.json()["message"]


def test_terminate_then_delete(trainer, task_a):
    response = trainer.get(f"/task/terminate/{task_a}")
    assert response.json() == {"message": f"terminating {task_a}", "status": "stopped"}
    again = trainer.get(f"/task/terminate/{task_a}")
    assert again.json() == {"message": f"{task_a} already stopped", "status": "stopped"}
    assert trainer.delete(f"/task/{task_a}").json() == {"message": f"deleted {task_a}"}
    assert trainer.get(f"/task/status/{task_a}").status_code == 404
    assert trainer.delete(f"/task/{task_a}").status_code == 404


def test_terminate_bad_phase(trainer, task_a):
    response = trainer.get(f"/task/terminate/{task_a}?phase=Bad Phase")
    assert response.status_code == 400 and "phase" in response.json()["message"]


def test_delete_running_task_is_409(trainer, task_a, engine):
    from tests.tasks_api.helpers import run_worker_until

    run_worker_until(engine, "aa_pool", lambda: engine.get_task(task_a)["status"] == "running")
    response = trainer.delete(f"/task/{task_a}")
    assert response.status_code == 409 and "message" in response.json()


def test_unknown_routes_answer_json_404(trainer):
    response = trainer.get("/task/nothing/here")
    assert response.status_code == 404 and response.json() == {"message": "no such route"}


def test_a_launch_cannot_chain_onto_a_task_of_another_entity(clients, pools, task_a):
    """Naming A's task as parent answers like a task that does not exist (no oracle)."""
    trainer_b = clients["trainer_b"]
    stolen = trainer_b.post("/task/launch/bb_pool", launch_body(parent=task_a), format="json")
    missing = trainer_b.post(
        "/task/launch/bb_pool", launch_body(parent="AATRN_xxyy_Nope_01_0123456789"), format="json"
    )
    assert stolen.status_code == missing.status_code == 404
    assert stolen.json()["message"] == missing.json()["message"].replace(
        "AATRN_xxyy_Nope_01_0123456789", task_a
    )
    own = clients["trainer_a"].post(
        "/task/launch/aa_pool", launch_body(parent=task_a), format="json"
    )
    assert own.status_code == 200, own.content
