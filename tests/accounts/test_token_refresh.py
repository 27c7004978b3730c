"""Issue 14: ``POST /auth/token/refresh``: a valid ``_T_`` token buys a new one of the same
session, never past ``TOKEN_MAX_SESSION_AGE`` after the login; other tokens cannot refresh."""

import json
import time

import pytest
from django.test import override_settings

from accounts import tokens
from tests.accounts.auth_helpers import PASSWORD, basic, bearer, login

pytest_plugins = ["tests.accounts.conftest_auth"]
pytestmark = [pytest.mark.urls("tests.accounts.auth_urls"), pytest.mark.django_db]


def _record(redis_client, token: str) -> dict:
    return json.loads(redis_client.get(tokens.AuthKeys.temporary(tokens.token_digest(token))))


def _age_session(redis_client, token: str, seconds: int) -> None:
    """Pretend the token's session started ``seconds`` earlier than it did."""
    key = tokens.AuthKeys.temporary(tokens.token_digest(token))
    record = json.loads(redis_client.get(key))
    record["session"] -= seconds
    redis_client.set(key, json.dumps(record), keepttl=True)


def test_refresh_returns_a_new_token_of_the_same_session(api, trainer, redis_client):
    old = login(api, trainer)
    response = api.post("/auth/token/refresh", **bearer(old))

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"token", "duration", "session_expires_in"}
    assert body["token"].startswith("_T_") and body["token"] != old
    assert body["duration"] == 600
    assert 7 * 86400 - 5 <= body["session_expires_in"] <= 7 * 86400
    assert response["Cache-Control"] == "no-store"
    assert _record(redis_client, body["token"])["session"] == _record(redis_client, old)["session"]
    assert api.get("/test/whoami", **bearer(body["token"])).json()["trainer_id"] == "AATRN"
    # The presented token lives on until its own expiry.
    assert api.get("/test/whoami", **bearer(old)).status_code == 200


def test_refresh_takes_a_duration_like_login(api, trainer):
    old = login(api, trainer)
    response = api.post("/auth/token/refresh", {"duration": 120}, format="json", **bearer(old))
    assert (response.status_code, response.json()["duration"]) == (200, 120)
    response = api.post("/auth/token/refresh?duration=0", **bearer(old))
    assert response.status_code == 400 and "duration" in response.json()["message"]


@override_settings(SNW_TOKEN_MAX_SESSION_AGE=1000)
def test_refresh_never_outlives_the_session_age_limit(api, trainer, redis_client):
    old = login(api, trainer)
    _age_session(redis_client, old, 900)

    body = api.post("/auth/token/refresh", **bearer(old)).json()

    assert 95 <= body["duration"] <= 100 and 95 <= body["session_expires_in"] <= 100
    ttl = redis_client.ttl(tokens.AuthKeys.temporary(tokens.token_digest(body["token"])))
    assert 95 <= ttl <= 100
    # A refresh of the refreshed token keeps the original session start.
    again = api.post("/auth/token/refresh", **bearer(body["token"])).json()
    assert again["duration"] <= body["duration"]

    _age_session(redis_client, body["token"], 200)
    refused = api.post("/auth/token/refresh", **bearer(body["token"]))
    assert refused.status_code == 403
    assert "session is older than the 1000s" in refused.json()["message"]


@override_settings(SNW_TOKEN_MAX_SESSION_AGE=0)
def test_refresh_can_be_disabled(api, trainer):
    response = api.post("/auth/token/refresh", **bearer(login(api, trainer)))
    assert response.status_code == 403 and "disabled" in response.json()["message"]


def test_persistent_and_task_tokens_cannot_refresh(api, persistent_token, task_token):
    response = api.post("/auth/token/refresh", **bearer(persistent_token))
    assert response.status_code == 403 and "temporary" in response.json()["message"]
    response = api.post("/auth/token/refresh", **bearer(task_token))
    assert response.status_code == 403


def test_expired_revoked_or_stale_tokens_cannot_refresh(api, trainer, redis_client):
    expired = tokens.temporary_token_create(user=trainer, duration=1).token
    time.sleep(1.5)
    assert api.post("/auth/token/refresh", **bearer(expired)).status_code == 401

    revoked = login(api, trainer)
    assert api.post("/auth/logout", **bearer(revoked)).status_code == 204
    assert api.post("/auth/token/refresh", **bearer(revoked)).status_code == 401

    stale = login(api, trainer)
    trainer.set_password("another-password-42")
    trainer.save()
    assert api.post("/auth/token/refresh", **bearer(stale)).status_code == 401


def test_a_password_or_no_credentials_cannot_refresh(api, trainer):
    assert api.post("/auth/token/refresh", **basic("AATRN", PASSWORD)).status_code == 401
    assert api.post("/auth/token/refresh").status_code == 401


def test_a_token_without_a_recorded_session_cannot_refresh(api, trainer, redis_client):
    old = login(api, trainer)
    key = tokens.AuthKeys.temporary(tokens.token_digest(old))
    record = json.loads(redis_client.get(key))
    del record["session"]  # as stored before sessions were recorded
    redis_client.set(key, json.dumps(record), keepttl=True)
    assert api.get("/test/whoami", **bearer(old)).status_code == 200
    response = api.post("/auth/token/refresh", **bearer(old))
    assert response.status_code == 403 and "log in again" in response.json()["message"]
