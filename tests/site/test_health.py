"""GET /status and GET /version."""

import pytest

from tests.helpers import free_port


@pytest.mark.django_db
def test_status_reports_database_and_redis_up(client):
    response = client.get("/status")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] is True
    assert body["redis"] is True
    assert body["status"] == "ok"
    assert body["version"]


@pytest.mark.django_db
def test_status_is_503_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/status")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "version": response.json()["version"],
        "database": True,
        "redis": False,
    }


def test_version(client):
    response = client.get("/version")
    assert response.status_code == 200
    assert response.json() == {"version": "0.1.0"}


def test_status_refuses_writes(client):
    assert client.post("/status").status_code == 405
