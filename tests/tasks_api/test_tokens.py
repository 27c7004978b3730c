"""Task-restricted tokens: minted at launch, valid on their task's callbacks only, void once
the task is stopped (the worker cannot revoke them; the callback check does)."""

from __future__ import annotations

from nmtwizard import hooks
from tests.tasks_api.helpers import token_client as _token_client


def test_worker_hooks_are_installed_and_importable():
    from tasks_api import hooks as worker_hooks

    assert hooks._resolve("minter").__module__ == "accounts.tokens"
    assert callable(worker_hooks.mint_task_token) and callable(worker_hooks.revoke_task_token)


def test_task_token_opens_its_callbacks_only(engine, task_a, make_task):
    client = _token_client(engine, task_a)
    assert client.put(f"/task/beat/{task_a}?duration=30").status_code == 200
    assert (
        client.patch(f"/task/log/{task_a}?offset=0", b"x", content_type="text/plain").status_code
        == 200
    )
    assert (
        client.post(f"/task/file/{task_a}/out.txt", b"x", content_type="text/plain").status_code
        == 200
    )
    assert client.get(f"/task/file/{task_a}/out.txt").content == b"x"
    # nmt-wizard's /file alias: the same callbacks
    assert client.post(f"/file/{task_a}/b.txt", b"y", content_type="text/plain").status_code == 200
    assert client.get(f"/file/{task_a}/b.txt").content == b"y"
    # not a callback route, or another task: refused
    assert client.get(f"/task/status/{task_a}").status_code == 403
    assert client.get("/task/list/-*").status_code == 403
    assert client.delete(f"/task/{task_a}").status_code == 403
    other = make_task()
    assert client.put(f"/task/beat/{other}").status_code == 403
    assert client.post(f"/file/{other}/b.txt", b"y", content_type="text/plain").status_code == 403


def test_task_token_reports_the_end_then_dies(engine, task_a):
    client = _token_client(engine, task_a)
    response = client.get(f"/task/terminate/{task_a}?phase=completed")
    assert response.status_code == 200
    assert engine.get_task(task_a)["message"] == "completed"
    # stopped through the API: the revoker hook deleted the token at once
    assert client.put(f"/task/beat/{task_a}").status_code == 401


def test_token_of_a_task_stopped_by_a_worker_is_refused(engine, task_a, redis_client):
    client = _token_client(engine, task_a)
    # a stop the API did not see (as a Django-free worker does it): no revocation happened
    engine.store.terminate(task_a, "expired")
    assert engine.get_task(task_a)["status"] == "stopped"
    refused = client.put(f"/task/beat/{task_a}")
    assert refused.status_code == 401 and "stopped" in refused.json()["message"]
    again = client.put(f"/task/beat/{task_a}")  # and it was revoked on the spot
    assert again.status_code == 401 and "Invalid" in again.json()["message"]
