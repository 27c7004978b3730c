"""Live following of a task log: ``GET /task/log/<id>?offset=N&wait=S`` as a long poll, against
a live server (its own threads), the real PostgreSQL and Redis."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from accounts.tokens import mint_task_token, temporary_token_create
from tests.helpers import run_later

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def follow(live_server, world):
    """``follow(task_id, offset, wait, who=…)``: the response and the seconds it took."""
    tokens = {}

    def get(task_id, offset=0, wait=None, who="trainer_a", token=None):
        if token is None:
            if who not in tokens:
                tokens[who] = temporary_token_create(user=world[who]).token
            token = tokens[who]
        params = {"offset": offset, **({"wait": wait} if wait is not None else {})}
        start = time.monotonic()
        response = requests.get(
            f"{live_server.url}/task/log/{task_id}",
            params=params,
            headers={"Authorization": f"Bearer {token}"},
            timeout=90,
        )
        return response, time.monotonic() - start

    return get


def test_a_follower_returns_early_with_a_line_posted_while_it_waits(
    follow, make_task, engine, clients
):
    task_id = make_task()
    engine.append_log(task_id, "epoch 1\n")
    # The task's own callback posts the line, as a running task does.
    post = run_later(0.5, lambda: engine.append_log(task_id, "epoch 2\n"))

    response, elapsed = follow(task_id, offset=8, wait=30)

    post.join()
    assert response.status_code == 200
    assert elapsed < 10, f"returned after {elapsed:.1f}s, not as soon as the line came"
    assert response.content == b"epoch 2\n"
    assert response.headers["X-Log-Offset"] == "16"
    assert response.headers["X-Task-Status"] == "queued"


def test_a_follower_returns_when_the_task_stops_and_at_once_once_stopped(follow, make_task, engine):
    task_id = make_task()
    stop = run_later(0.5, lambda: engine.request_terminate(task_id))

    response, elapsed = follow(task_id, wait=30)

    stop.join()
    assert elapsed < 10 and response.content == b""
    assert response.headers["X-Task-Status"] == "stopped"
    assert response.headers["X-Task-Message"] == "aborted"

    response, elapsed = follow(task_id, wait=30)
    assert elapsed < 2 and response.headers["X-Task-Status"] == "stopped"


def test_wait_without_news_returns_empty_after_wait(follow, make_task):
    task_id = make_task()
    response, elapsed = follow(task_id, wait=0.5)
    assert response.status_code == 200 and response.content == b""
    assert 0.4 < elapsed < 5
    assert response.headers["X-Log-Offset"] == "0"


@pytest.mark.parametrize("wait", ["61", "-1", "x", "nan"])
def test_wait_is_bounded(clients, make_task, wait):
    task_id = make_task()
    response = clients["trainer_a"].get(f"/task/log/{task_id}?wait={wait}")
    assert response.status_code == 400
    assert "wait" in response.json()["message"]


def test_many_followers_wait_together_and_all_get_the_line(follow, make_task, engine):
    task_id = make_task()
    results = []
    followers = [
        threading.Thread(target=lambda: results.append(follow(task_id, wait=30))) for _ in range(50)
    ]
    for follower in followers:
        follower.start()
    deadline = time.monotonic() + 20
    while engine.log_watch.waiting() < 50 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert engine.log_watch.waiting() == 50
    start = time.monotonic()
    engine.append_log(task_id, "hello\n")
    for follower in followers:
        follower.join(30)
    assert time.monotonic() - start < 10
    assert [r.content for r, _ in results] == [b"hello\n"] * 50


def test_a_task_token_cannot_follow_another_task_or_read_logs(follow, make_task, world):
    own, other = make_task(), make_task()
    token = mint_task_token(own, world["trainer_a"])
    response, _ = follow(other, wait=5, token=token)
    assert response.status_code == 403
    # Log reading is not a callback route: its own task's log is closed to it too.
    response, _ = follow(own, wait=5, token=token)
    assert response.status_code == 403


def test_another_entity_cannot_follow(follow, make_task):
    task_id = make_task()
    response, elapsed = follow(task_id, wait=30, who="trainer_b")
    assert response.status_code == 404 and elapsed < 5
