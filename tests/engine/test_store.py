"""Task store: creation, indexes and listing, logs, files, stats, deletion, lua transitions."""

import pytest
import redis

from nmtwizard import defaults
from nmtwizard.exceptions import (
    CapacityError,
    FileNotFoundInTask,
    InvalidFileName,
    InvalidRequest,
    InvalidTransition,
    TaskNotFound,
    TaskNotStopped,
)
from nmtwizard.store import _PRELUDE, LOG_TRUNCATED_MARKER, check_file_name


@pytest.fixture
def synced(engine, config_dir):
    engine.sync_pool_configs(config_dir)
    return engine


def test_launch_stores_owner_and_nmtwizard_fields(synced, launch):
    (task_id,) = launch(
        priority=3, options={"a": 1}, command=["-c", '{"source": "en", "target": "fr"}', "train"]
    )
    task = synced.get_task(task_id)
    assert task["status"] == "queued" and task["entity"] == "AB" and task["user"] == "ABusr"
    assert task["type"] == "train" and task["priority"] == 3 and task["ngpus"] == 1
    assert task["ncpus"] == 1  # cpu_allocation.gpu_task
    assert task["content"]["docker"]["registry"] == "hub"  # auto registry
    assert task_id.startswith("ABusr_enfr_") and "launched_time" in task and "queued_time" in task


def test_launch_refuses_bad_requests(synced, launch):
    with pytest.raises(CapacityError):
        launch(ngpus=3)  # hosts have 2 GPUs
    with pytest.raises(InvalidRequest, match="iterations"):
        launch(command=["trans"], iterations=2)
    with pytest.raises(InvalidRequest, match="registry"):
        launch(image="other/img")
    with pytest.raises(InvalidFileName):
        launch(files={"../etc/passwd": b"x"})
    with pytest.raises(InvalidRequest, match="file a/b/c is under file a/b"):
        launch(files={"a/b": b"x", "a/b/c": b"y"})  # the host could not write both
    assert synced.list_tasks() == []  # nothing half-created


def test_listing_uses_indexes_and_filters(synced, launch):
    a = launch()[0]
    b = launch(entity="CD", user="CDxyz", trainer_id="CDxyz")[0]
    c = launch(ngpus=0, command=["trans"])[0]
    synced.request_terminate(c)
    assert [t["task_id"] for t in synced.list_tasks()] == [c, b, a]  # newest first
    assert [t["task_id"] for t in synced.list_tasks(entities={"AB"})] == [c, a]
    assert [t["task_id"] for t in synced.list_tasks(entities={"AB", "CD"})] == [c, b, a]
    assert synced.list_tasks(entities=set()) == []
    assert [t["task_id"] for t in synced.list_tasks("CDxyz*")] == [b]
    assert [t["task_id"] for t in synced.list_tasks(status="stopped")] == [c]
    assert [t["task_id"] for t in synced.list_tasks(entities={"AB"}, status="queued")] == [a]
    assert [t["task_id"] for t in synced.list_tasks(users={"CDxyz"}, pool="pool")] == [b]
    assert [t["task_id"] for t in synced.list_tasks(offset=1, limit=1)] == [b]
    assert "token" not in synced.list_tasks()[0]


def test_log_append_cap_and_offset(synced, launch):
    (task_id,) = launch()
    store = synced.store
    store.append_log(task_id, "hello ")
    data, offset = synced.read_log(task_id)
    assert data == b"hello " and offset == 6
    store.append_log(task_id, "world")
    assert synced.read_log(task_id, offset) == (b"world", 11)
    store.append_log(task_id, "x" * 100, max_size=20)
    data, _ = synced.read_log(task_id)
    assert data == b"hello world" + b"x" * 9 + LOG_TRUNCATED_MARKER
    store.append_log(task_id, "more", max_size=20)  # dropped once full
    assert synced.read_log(task_id)[0].endswith(LOG_TRUNCATED_MARKER)
    with pytest.raises(TaskNotFound):
        synced.append_log("ABusr_xxyy_X_01_nope", "x")


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/../../b", "a//b", "a\\b", ".", ""])
def test_path_traversal_is_refused(synced, launch, name):
    (task_id,) = launch()
    with pytest.raises(InvalidFileName):
        synced.put_file(task_id, name, b"data")
    with pytest.raises(InvalidFileName):
        synced.get_file(task_id, name)


def test_files_round_trip_binary_and_caps(synced, launch):
    (task_id,) = launch(files={"input/src.txt": b"\x00\xff"})
    assert synced.get_file(task_id, "input/src.txt") == b"\x00\xff"
    synced.put_file(task_id, "out/model.bin", b"\x01" * 10)
    assert synced.list_files(task_id) == {"input/src.txt": 2, "out/model.bin": 10}
    with pytest.raises(FileNotFoundInTask):
        synced.get_file(task_id, "missing")
    with pytest.raises(CapacityError):
        synced.store.put_file(task_id, "big", b"x" * 11, max_size=10)
    assert check_file_name("a/b.c") == "a/b.c"


def test_a_tasks_files_are_capped_in_total_bytes(synced, launch):
    (task_id,) = launch(files={"a": b"x" * 6})
    store = synced.store

    store.put_file(task_id, "b", b"y" * 4, max_total=10)  # 6 + 4: at the cap
    store.put_file(task_id, "b", b"z" * 4, max_total=10)  # replacing counts the new size only
    with pytest.raises(CapacityError, match="would exceed their total size"):
        store.put_file(task_id, "c", b"!", max_total=10)

    assert synced.list_files(task_id) == {"a": 6, "b": 4}
    assert synced.get_file(task_id, "b") == b"z" * 4


def test_a_launch_cannot_store_unbounded_files(synced, launch, monkeypatch):
    monkeypatch.setattr(defaults, "MAX_TASK_FILES_BYTES", 100)
    monkeypatch.setattr(defaults, "MAX_LAUNCH_FILES_BYTES", 250)

    with pytest.raises(CapacityError, match="a task holds at most 100"):
        launch(files={"a": b"x" * 60, "b": b"x" * 41})
    with pytest.raises(CapacityError, match="3 tasks would store 300 bytes"):
        launch(files={"a": b"x" * 100}, iterations=3)

    assert synced.list_tasks() == []  # nothing half-created
    assert len(launch(files={"a": b"x" * 100}, iterations=2)) == 2


def test_annotate_writes_only_on_an_existing_task(synced, launch):
    (task_id,) = launch()
    store = synced.store

    assert store.annotate(task_id, only_new=True, end_detail="exit 0") == 1
    assert store.annotate(task_id, only_new=True, end_detail="again") == 0
    assert store.annotate(task_id, status_error="hiccup") == 1
    task = synced.get_task(task_id)
    assert (task["end_detail"], task["status_error"]) == ("exit 0", "hiccup")

    synced.request_terminate(task_id)
    synced.delete_task(task_id)
    assert store.annotate(task_id, end_detail="late poll") == 0
    assert not synced.redis.exists(synced.keys.task(task_id))


def test_stats_and_delete_only_when_stopped(synced, launch):
    (task_id,) = launch()
    synced.post_stat(task_id, start_time=10, end_time=25, statistics={"bleu": 30})
    task = synced.get_task(task_id)
    assert task["duration"] == 15 and task["statistics"] == {"bleu": 30}
    synced.post_stat(task_id, start_time=10, end_time=12, statistics={})  # nothing to report
    assert synced.get_task(task_id)["statistics"] == {}
    with pytest.raises(InvalidRequest, match="statistics: expected an object"):
        synced.post_stat(task_id, start_time=10, end_time=12, statistics=[])
    with pytest.raises(TaskNotStopped):
        synced.delete_task(task_id)
    synced.append_log(task_id, "log")
    synced.request_terminate(task_id)
    synced.delete_task(task_id)
    with pytest.raises(TaskNotFound):
        synced.get_task(task_id)
    assert synced.list_tasks() == []
    assert synced.redis.keys("snw:log:*") == [] and synced.redis.keys("snw:files:*") == []
    with pytest.raises(TaskNotFound):
        synced.delete_task(task_id)


def test_lua_status_changes_follow_the_transition_table(synced, launch):
    (task_id,) = launch()
    set_status = synced.redis.register_script(_PRELUDE + "set_status(ARGV[2], ARGV[3], 1)")

    def change(new):
        try:
            set_status(args=[synced.store.namespace, task_id, new])
        except redis.ResponseError as exc:
            raise InvalidTransition(str(exc)) from None

    with pytest.raises(InvalidTransition, match="queued -> running"):
        change("running")
    change("allocated")
    with pytest.raises(InvalidTransition, match="allocated -> stopped"):
        change("stopped")
    change("running")
    with pytest.raises(InvalidTransition):
        change("queued")
    assert [t["task_id"] for t in synced.list_tasks(status="running")] == [task_id]
    assert synced.list_tasks(status="queued") == []


def test_unknown_task_errors(synced):
    with pytest.raises(TaskNotFound):
        synced.get_task("ABusr_xxyy_X_01_missing")
    with pytest.raises(TaskNotFound):
        synced.request_terminate("ABusr_xxyy_X_01_missing")
