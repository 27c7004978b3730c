"""Task commands against a live server: launch (with uploads), exec, lt, status, file,
terminate, dt, log -f following a task run by a real engine worker to completion."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest

from tests.helpers import until

pytestmark = pytest.mark.django_db(transaction=True)

IMAGE = ["-s", "aa_pool", "-i", "nmtwizard/echo", "-t", "v1"]


def _launch(snw, *args: str) -> str:
    result = snw("launch", *IMAGE, "-q", *args)
    (task_id,) = result.stdout.split()
    return task_id


def test_launch_uploads_files_and_shows_them(snw, login_as, pool_dir, tmp_path):
    login_as("AATRN")
    data = tmp_path / "data"
    data.mkdir()
    (data / "corpus.txt").write_text("hello corpus\n")
    (data / "vocab").mkdir()
    (data / "vocab" / "en.txt").write_text("the\n")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"source": "en", "target": "de", "vocab": str(data / "vocab")}))

    result = snw(
        "launch", *IMAGE, "-g", "1", "-c", "2", "-n", "MyModel", "-P", "3",
        "--novalidschema", "--upgrade", "none",
        "--", "-c", f"@{config}", "train", "--corpus", str(data / "corpus.txt"),
    )  # fmt: skip
    kind, task_id, resources = result.stdout.strip().split("\t")
    assert kind == "train" and task_id.startswith("AATRN_ende_MyModel")
    assert resources == "ngpus: 1, ncpus: 2"

    status = json.loads(snw("status", task_id, "--json").stdout)
    command = status["content"]["docker"]["command"]
    assert command[0] == "-c" and command[2:4] == ["train", "--corpus"]
    assert json.loads(command[1]) == {"source": "en", "target": "de", "vocab": "${TMP_DIR}/vocab"}
    assert command[4] == "${TMP_DIR}/corpus.txt"
    assert status["files"] == ["corpus.txt", "vocab/en.txt"]
    assert status["file_sizes"] == {"corpus.txt": 13, "vocab/en.txt": 4}
    assert status["priority"] == 3

    text = snw("status", task_id).stdout
    assert f"TASK {task_id} - TYPE train - status queued" in text
    assert "ATTACHED FILES: corpus.txt (13 bytes), vocab/en.txt (4 bytes)" in text
    timeline = text.split("TIMELINE\n")[1].split("CONTENT")[0]
    assert re.search(r"launched\s*\n.*queued\s+\(\+\d+\.\ds\)", timeline)

    assert snw("file", task_id, "corpus.txt").stdout_bytes == b"hello corpus\n"
    out = tmp_path / "en.txt"
    snw("file", task_id, "vocab/en.txt", "-o", str(out))
    assert out.read_text() == "the\n"
    assert snw("file", task_id, "missing.txt", ok=False).output.startswith("Error: ")


def test_lt_table_sorted_and_filtered(snw, login_as, pool_dir):
    login_as("AATRN")
    first = _launch(snw, "--", "train")
    second = _launch(snw, "-g", "0", "--", "train")
    lines = snw("lt").stdout.splitlines()
    header = re.sub(r" +", " ", lines[1])
    assert header == (
        "| Task ID | Service | Resource | Priority | Launch Date | Image | Status | Message |"
    )
    body = "\n".join(lines[3:])
    assert body.index(first) < body.index(second)  # oldest launch first
    assert "echo:v1" in body and ":(1," in body
    assert snw("lt", "-q", "-S", "queued", "-s", "aa_pool").stdout.split() == [first, second]
    assert snw("task", "list", "-p", first).stdout.count("AATRN_") == 1
    assert json.loads(snw("lt", "--json", "-S", "running").stdout) == []


def _command_of(snw, task_id: str) -> list[str]:
    content = json.loads(snw("status", task_id, "--json").stdout)["content"]
    content = json.loads(content) if isinstance(content, str) else content
    return content["docker"]["command"]


def test_launch_a_chain_uploads_translation_inputs_and_references(
    snw, login_as, pool_dir, tmp_path
):
    login_as("AATRN")
    data = tmp_path / "data"
    data.mkdir()
    (data / "test.en").write_text("hello\n")
    (data / "test.de").write_text("hallo\n")
    result = snw(
        "launch", "-s", "aa_pool", "-i", "nmtwizard/echo:v1.20.0", "-n", "Chain",
        "--totranslate", str(data / "test.en"), "launcher:test_<MODEL>.de",
        "--toscore", "launcher:test_<MODEL>.de", str(data / "test.de"),
        "--", "-c", '{"source": "en", "target": "de"}', "train",
    )  # fmt: skip
    lines = [line.split("\t") for line in result.stdout.strip().splitlines()]
    assert [kind for kind, _, _ in lines] == ["prepr", "train", "trans", "score"]
    _, train, trans, score = (task_id for _, task_id, _ in lines)
    assert train.startswith("AATRN_ende_Chain_01_")
    assert _command_of(snw, trans) == [
        "-m", train, "trans", "--as_release", "-i", "${TMP_DIR}/test.en",
        "-o", f"launcher:test_{train}.de",
    ]  # fmt: skip
    assert _command_of(snw, score) == [
        "score", "-o", f"launcher:test_{train}.de", "-r", "${TMP_DIR}/test.de",
        "-f", "launcher:scores",
    ]  # fmt: skip
    assert snw("file", score, "test.de").stdout_bytes == b"hallo\n"
    assert snw("file", trans, "test.en").stdout_bytes == b"hello\n"  # the input it translates


def test_exec_creates_a_generic_task(snw, login_as, pool_dir):
    login_as("AATRN")
    result = snw("exec", "-s", "aa_pool", "-i", "nmtwizard/score:latest", "-g", "0", "-c", "1",
                 "--json", "--", "score", "-o", "x")  # fmt: skip
    (created,) = json.loads(result.stdout)
    assert created["type"] == "exec" and created["task_id"].startswith("AATRN_")
    status = json.loads(snw("status", created["task_id"], "--json").stdout)
    assert status["type"] == "exec" and status["ngpus"] == 0


def test_launch_errors(snw, login_as, pool_dir):
    login_as("AAUSR")
    forbidden = snw("launch", *IMAGE, "--", "train", ok=False)
    assert forbidden.output.startswith("Error: ") and forbidden.output.count("\n") == 1
    login_as("AATRN")
    assert "-t" in snw("launch", "-s", "aa_pool", "-i", "nmtwizard/echo", "--", "train",
                       ok=False).output  # fmt: skip
    missing = snw("launch", *IMAGE, "--", "train", "/no/such/file.txt", ok=False)
    assert "no such local file" in missing.output
    unknown_pool = snw("launch", "-s", "zz_pool", "-i", "nmtwizard/echo:v1", "--", "train",
                       ok=False)  # fmt: skip
    assert unknown_pool.output.startswith("Error: ")


def test_unknown_task(snw, login_as, pool_dir):
    login_as("AATRN")
    for command in (["status"], ["terminate"], ["log"], ["log", "-f"], ["file"]):
        args = [*command, "AATRN_nope"] + (["x.txt"] if command == ["file"] else [])
        result = snw(*args, ok=False)
        assert result.output.startswith("Error: "), result.output
        assert result.output.count("\n") == 1


def test_terminate_forbidden_then_allowed_then_dt(snw, login_as, pool_dir):
    login_as("AATRN")
    task_id = _launch(snw, "--", "train")
    login_as("AAUSR")
    assert task_id in snw("lt", "-q").stdout  # a user of AA may read
    assert snw("terminate", task_id, ok=False).output.startswith("Error: ")
    login_as("BBTRN")
    assert snw("status", task_id, ok=False).output.startswith("Error: ")  # other entity: 404

    login_as("AATRN")
    assert task_id in snw("terminate", task_id).stdout
    assert json.loads(snw("status", task_id, "--json").stdout)["status"] == "stopped"
    login_as("AAUSR")
    assert snw("dt", "-p", "AATRN", "--yes", ok=False).output.count("not deleted AATRN") == 1
    login_as("AATRN")
    declined = snw("dt", "-p", "AATRN", input="n\n", ok=False)
    assert "Delete these 1 stopped tasks?" in declined.output and "aborted" in declined.output
    assert task_id in snw("lt", "-q").stdout
    deleted = snw("dt", "-p", "AATRN", input="y\n")
    assert f"deleted {task_id}" in deleted.stdout
    assert snw("lt").stdout.strip() == "No tasks."
    assert snw("task", "delete", "-p", "AATRN", "--yes").stdout.strip() == "No stopped tasks."


def test_dt_deletes_only_stopped_tasks(snw, login_as, pool_dir):
    """The server refuses to delete a task that has not stopped: dt must not offer it."""
    login_as("AATRN")
    live = _launch(snw, "--", "train")
    assert snw("dt", "-p", "AATRN", "--yes").stdout == (
        "No stopped tasks. 1 matching task(s) not stopped, left alone.\n"
    )
    stopped = _launch(snw, "--", "train")
    snw("terminate", stopped)

    result = snw("dt", "-p", "AATRN", input="y\n")

    assert live not in result.output.split("left alone")[0]  # not listed for deletion
    assert "1 matching task(s) not stopped, left alone." in result.stdout
    assert "Delete these 1 stopped tasks?" in result.output
    assert f"deleted {stopped}" in result.stdout
    assert snw("lt", "-q").stdout.split() == [live]
    answer = json.loads(snw("dt", "-p", "AATRN", "--yes", "--json").stdout)
    assert answer == {"deleted": [], "failed": {}, "not_stopped": [live]}


def test_log_follows_a_real_task_to_completion(snw, login_as, engine, worker):
    login_as("AATRN")
    task_id = _launch(snw, "-o", '{"fake": {"duration": 2}}', "--", "train")
    until(lambda: engine.get_task(task_id)["status"] == "running", what="the task to run")
    engine.append_log(task_id, "epoch 1\n")  # what the task's log callback does

    def later():
        until(lambda: engine.read_log(task_id)[0], what="the first line to be read")
        engine.append_log(task_id, "epoch 2\n")

    writer = threading.Thread(target=later)
    writer.start()
    result = snw("log", "-f", task_id)
    writer.join(10)
    assert result.exit_code == 0
    assert result.stdout == "epoch 1\nepoch 2\n"
    assert f"[snw] task {task_id} stopped (completed)" in result.stderr
    assert engine.get_task(task_id)["status"] == "stopped"
    assert snw("log", task_id).stdout == "epoch 1\nepoch 2\n"
    assert json.loads(snw("log", task_id, "--json", "--offset", "8").stdout)["log"] == "epoch 2\n"


def test_log_follow_exits_1_when_the_task_fails(snw, login_as, engine, worker):
    login_as("AATRN")
    task_id = _launch(snw, "-o", '{"fake": {"duration": 1, "exit_code": 3}}', "--", "train")
    until(lambda: engine.get_task(task_id)["status"] == "running", what="the task to run")
    engine.append_log(task_id, "boom\n")

    result = snw("log", "-f", task_id, ok=False)

    assert result.exit_code == 1
    assert result.stdout == "boom\n"
    message = engine.get_task(task_id)["message"]
    assert message != "completed"
    assert f"[snw] task {task_id} stopped ({message})" in result.stderr


def test_log_follow_prints_a_line_as_soon_as_it_is_posted(snw, login_as, engine, pool_dir):
    """No worker: the task stays queued; a line posted while snw waits on the launcher shows at
    once, and stopping the task ends the follow with status 1 (aborted)."""
    login_as("AATRN")
    task_id = _launch(snw, "--", "train")
    times = {}

    def later():
        time.sleep(1.0)
        times["posted"] = time.monotonic()
        engine.append_log(task_id, "line\n")
        until(lambda: engine.log_watch.waiting(), what="snw to wait again")
        times["stopping"] = time.monotonic()
        engine.request_terminate(task_id)

    writer = threading.Thread(target=later)
    writer.start()
    start = time.monotonic()
    result = snw("log", "-f", task_id, ok=False)
    writer.join(10)

    assert result.exit_code == 1 and result.stdout == "line\n"
    assert "stopped (aborted)" in result.stderr
    assert time.monotonic() - start < 10  # woken, never a 30 s poll to the end


def test_log_follow_outlives_a_short_token_by_refreshing_it(
    snw, login_as, engine, worker, token_file
):
    first = login_as("AATRN", duration=2)
    task_id = _launch(snw, "-o", '{"fake": {"duration": 4}}', "--", "train")

    result = snw("log", "-f", task_id)

    assert result.exit_code == 0 and "stopped (completed)" in result.stderr
    saved = token_file.read_text().strip()
    assert saved != first and saved.startswith("_T_")
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert snw("whoami").exit_code == 0  # the refreshed token is the one saved


def test_log_follow_does_not_save_a_given_token(snw, people, engine, worker, token_file):
    from accounts.tokens import temporary_token_create

    snw.env["SNW_TOKEN"] = temporary_token_create(user=people["AATRN"]).token
    task_id = _launch(snw, "-o", '{"fake": {"duration": 1}}', "--", "train")

    assert snw("log", "-f", task_id).exit_code == 0
    assert not token_file.exists()
