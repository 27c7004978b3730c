"""Long-poll log reads (Engine.follow_log): woken by the writes' pub/sub notifications."""

import threading
import time

import pytest

from nmtwizard import defaults
from nmtwizard.exceptions import InvalidRequest, TaskNotFound
from nmtwizard.services.hostexec import LogSync
from tests.helpers import run_later, until


@pytest.fixture
def task(engine, config_dir, launch):
    engine.sync_pool_configs(config_dir)
    return launch()[0]


def _timed_follow(engine, task_id, offset, wait):
    start = time.monotonic()
    chunk = engine.follow_log(task_id, offset, wait=wait)
    return chunk, time.monotonic() - start


@pytest.mark.parametrize("how", ["append", "host sync", "replace"])
def test_a_waiting_reader_wakes_when_a_line_is_posted(engine, task, how):
    engine.append_log(task, "one\n")
    write = {
        "append": lambda: engine.append_log(task, "two\n"),
        "host sync": lambda: LogSync(engine.redis, engine.keys).append(task, 0, b"two\n"),
        "replace": lambda: engine.write_log(task, "one\ntwo\n"),
    }[how]
    writer = run_later(0.3, write)

    chunk, elapsed = _timed_follow(engine, task, 4, wait=30)

    writer.join()
    assert elapsed < 5
    assert chunk.data == b"two\n" and chunk.offset == 8
    assert chunk.status == "queued" and not chunk.stopped
    assert engine.log_watch.waiting() == 0


def test_a_waiting_reader_wakes_when_the_task_stops(engine, task):
    writer = run_later(0.3, lambda: engine.request_terminate(task))

    chunk, elapsed = _timed_follow(engine, task, 0, wait=30)

    writer.join()
    assert elapsed < 5
    assert chunk.stopped and chunk.message == "aborted" and chunk.data == b""


def test_a_stopped_task_or_data_answers_at_once(engine, task):
    engine.append_log(task, "x")
    chunk, elapsed = _timed_follow(engine, task, 0, wait=30)
    assert chunk.data == b"x" and elapsed < 1
    engine.request_terminate(task)
    chunk, elapsed = _timed_follow(engine, task, 1, wait=30)
    assert chunk.stopped and chunk.data == b"" and elapsed < 1


def test_wait_expires_without_news_and_is_bounded(engine, task):
    chunk, elapsed = _timed_follow(engine, task, 0, wait=0.3)
    assert chunk.data == b"" and 0.25 < elapsed < 3
    with pytest.raises(InvalidRequest, match="wait"):
        engine.follow_log(task, 0, wait=defaults.MAX_LOG_WAIT + 1)
    with pytest.raises(InvalidRequest, match="wait"):
        engine.follow_log(task, 0, wait=-1)
    with pytest.raises(TaskNotFound):
        engine.follow_log("nope", 0, wait=1)


def test_many_waiters_share_one_subscription(engine, task, redis_client):
    channel = engine.keys.log_events()
    engine.follow_log(task, 0, wait=0.05)  # starts this engine's listener
    subscribed = redis_client.pubsub_numsub(channel)[0][1]  # earlier tests' engines count too
    results = []
    readers = [
        threading.Thread(target=lambda: results.append(engine.follow_log(task, 0, wait=30)))
        for _ in range(50)
    ]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + 10
    while engine.log_watch.waiting() < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    during = redis_client.pubsub_numsub(channel)[0][1]
    engine.append_log(task, "line\n")
    for reader in readers:
        reader.join(10)
    assert [c.data for c in results] == [b"line\n"] * 50
    assert during <= subscribed  # 50 waiting readers added no subscription


def test_before_wait_runs_only_when_the_reader_waits(engine, task):
    calls = []
    engine.append_log(task, "x")
    engine.follow_log(task, 0, wait=1, before_wait=lambda: calls.append(1))
    assert calls == []
    engine.follow_log(task, 1, wait=0.1, before_wait=lambda: calls.append(1))
    assert calls == [1]


def test_followers_survive_a_lost_subscription(engine, task, redis_client):
    """The listener's connection is killed while a reader waits: it reconnects, and a line
    posted after that still wakes the reader well before its wait ends."""
    engine.follow_log(task, 0, wait=0.05)  # starts the listener
    db = str(redis_client.connection_pool.connection_kwargs.get("db", 0))
    results = []
    reader = threading.Thread(target=lambda: results.append(_timed_follow(engine, task, 0, 30)))
    reader.start()
    until(lambda: engine.log_watch.waiting(), what="the reader to wait")
    for client in redis_client.client_list(_type="pubsub"):
        if client["db"] == db:  # only this suite's subscriptions
            redis_client.client_kill_filter(_id=client["id"])
    time.sleep(0.2)
    until(lambda: engine.log_watch.subscribed, what="the listener to subscribe again")
    until(lambda: redis_client.pubsub_numsub(engine.keys.log_events())[0][1], what="a subscriber")
    engine.append_log(task, "after\n")
    reader.join(30)
    ((chunk, elapsed),) = results
    assert chunk.data == b"after\n" and elapsed < 10
