"""Issue 4: login, temporary tokens, the accepted forms, logout and invalidation, rate limit.

Everything runs against the real Redis test database and the real SQL database.
"""

import json
import time

import pytest
from django.test import override_settings

from accounts import services, tokens
from accounts.models import PersistentToken
from tests.accounts.auth_helpers import PASSWORD, TASK_ID, basic, bearer, login

pytest_plugins = ["tests.accounts.conftest_auth"]
pytestmark = [pytest.mark.urls("tests.accounts.auth_urls"), pytest.mark.django_db]

GENERIC_LOGIN_ERROR = {"message": "Invalid credentials."}


# =============================================================================
# Login: GET/POST /auth/token
# =============================================================================
def test_login_returns_a_temporary_token_of_the_default_duration(api, trainer):
    response = api.get("/auth/token", **basic("AATRN", PASSWORD))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "duration"}
    assert body["duration"] == 600
    assert body["token"].startswith("_T_") and len(body["token"]) == 3 + 43
    assert response["Cache-Control"] == "no-store"
    assert api.get("/test/whoami", **bearer(body["token"])).json()["trainer_id"] == "AATRN"


def test_login_by_post_with_duration_in_body_or_query(api, trainer):
    by_body = api.post("/auth/token", {"duration": 120}, format="json", **basic("AATRN", PASSWORD))
    by_query = api.post("/auth/token?duration=90", **basic("AATRN", PASSWORD))

    assert (by_body.status_code, by_body.json()["duration"]) == (200, 120)
    assert (by_query.status_code, by_query.json()["duration"]) == (200, 90)


def test_requested_duration_sets_the_redis_ttl(api, trainer, redis_client):
    token = api.get("/auth/token?duration=3600", **basic("AATRN", PASSWORD)).json()["token"]

    ttl = redis_client.ttl(tokens.AuthKeys.temporary(tokens.token_digest(token)))
    assert 3590 <= ttl <= 3600


@override_settings(SNW_TOKEN_MAX_DURATION=1000)
@pytest.mark.parametrize("duration", ["1001", "0", "-5", "soon"])
def test_duration_out_of_range_is_refused_naming_the_field(api, trainer, duration):
    response = api.get(f"/auth/token?duration={duration}", **basic("AATRN", PASSWORD))

    assert response.status_code == 400
    assert response.json()["message"].startswith("duration:")
    assert "duration" in response.json()["errors"]


def test_duration_at_the_maximum_is_accepted(api, trainer, settings):
    max_duration = settings.SNW_TOKEN_MAX_DURATION
    response = api.get(f"/auth/token?duration={max_duration}", **basic("AATRN", PASSWORD))
    assert (response.status_code, response.json()["duration"]) == (200, max_duration)


@pytest.mark.parametrize(
    "username, password",
    [("AATRN", "wrong-password"), ("AAXXX", PASSWORD), ("AATRN", ""), ("", "")],
)
def test_wrong_credentials_answer_one_generic_401(api, trainer, username, password):
    response = api.get("/auth/token", **basic(username, password))

    assert response.status_code == 401
    assert response.json() == GENERIC_LOGIN_ERROR
    assert response["WWW-Authenticate"] == 'Basic realm="snw"'


@pytest.mark.parametrize(("username", "password"), [("AA\x00TRN", "x"), ("AATRN", "pw\x00")])
def test_a_nul_in_basic_credentials_is_malformed_not_a_server_error(
    api, trainer, username, password
):
    response = api.get("/auth/token", **basic(username, password))

    assert response.status_code == 401
    assert response.json() == {"message": "Malformed HTTP Basic credentials."}


def test_login_without_credentials_asks_for_basic(api):
    response = api.get("/auth/token")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="snw"'
    assert "message" in response.json()


def test_login_with_a_token_instead_of_a_password_is_refused(api, trainer):
    token = tokens.temporary_token_create(user=trainer).token
    assert api.get("/auth/token", **bearer(token)).status_code == 401
    assert api.get("/auth/token", **basic(token, "x")).status_code == 401


def test_inactive_user_cannot_log_in(api, trainer):
    trainer.is_active = False
    trainer.save()
    response = api.get("/auth/token", **basic("AATRN", PASSWORD))
    assert (response.status_code, response.json()) == (401, GENERIC_LOGIN_ERROR)


def test_user_of_an_inactive_entity_cannot_log_in(api, trainer, tenant):
    tenant.is_active = False
    tenant.save()
    response = api.get("/auth/token", **basic("AATRN", PASSWORD))
    assert (response.status_code, response.json()) == (401, GENERIC_LOGIN_ERROR)


# =============================================================================
# Accepted forms: Bearer and Basic-with-token; passwords only on /auth/token
# =============================================================================
def test_bearer_and_basic_token_forms_authenticate(api, trainer, persistent_token):
    temporary = login(api, trainer)
    for token in (temporary, persistent_token):
        for headers in (bearer(token), basic(token, "x"), basic(token, "")):
            response = api.get("/test/whoami", **headers)
            assert response.status_code == 200, (token[:3], headers)
            assert response.json()["trainer_id"] == "AATRN"
    assert api.get("/test/whoami", **bearer(temporary)).json()["kind"] == "temporary"
    assert api.get("/test/whoami", **bearer(persistent_token)).json()["kind"] == "persistent"


def test_bearer_scheme_is_case_insensitive(api, trainer):
    token = login(api, trainer)
    assert api.get("/test/whoami", HTTP_AUTHORIZATION=f"bearer {token}").status_code == 200


@pytest.mark.parametrize(
    "path", ["/test/whoami", "/auth/tokens", "/auth/logout", "/api/schema?format=json"]
)
def test_password_basic_is_refused_outside_auth_token(api, trainer, path):
    response = api.post(path, **basic("AATRN", PASSWORD))

    assert response.status_code == 401
    assert "/auth/token" in json.loads(response.content)["message"]
    assert response["WWW-Authenticate"] == 'Bearer realm="snw"'


def test_anonymous_request_gets_401_with_www_authenticate(api):
    response = api.get("/test/whoami")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="snw"'


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer not-a-token",
        "Bearer _T_short",
        "Bearer _T_" + "A" * 43,  # well formed, unknown
        "Bearer _P_" + "A" * 43,  # well formed, unknown
        "Bearer _X_" + "A" * 43,
        "Bearer _T_" + "A" * 42 + "!",
        "Bearer a b",
        "Basic !!!not-base64!!!",
        "Basic " + "X19UXw==",  # "__T_" with no colon
    ],
)
def test_malformed_or_unknown_tokens_answer_401(api, trainer, header):
    response = api.get("/test/whoami", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="snw"'
    assert set(response.json()) == {"message"}


def test_temporary_token_expires_with_its_ttl(api, trainer):
    token = api.get("/auth/token?duration=1", **basic("AATRN", PASSWORD)).json()["token"]
    assert api.get("/test/whoami", **bearer(token)).status_code == 200

    time.sleep(1.2)

    response = api.get("/test/whoami", **bearer(token))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="snw"'


# =============================================================================
# Revocation: logout, password change, deactivation
# =============================================================================
def test_logout_revokes_the_presented_temporary_token_only(api, trainer):
    token, other = login(api, trainer), login(api, trainer)

    assert api.post("/auth/logout", **bearer(token)).status_code == 204

    assert api.get("/test/whoami", **bearer(token)).status_code == 401
    assert api.post("/auth/logout", **bearer(token)).status_code == 401
    assert api.get("/test/whoami", **bearer(other)).status_code == 200


def test_logout_with_a_persistent_token_revokes_it(api, trainer, persistent_token):
    assert api.post("/auth/logout", **basic(persistent_token, "x")).status_code == 204

    assert api.get("/test/whoami", **bearer(persistent_token)).status_code == 401
    assert PersistentToken.objects.get(owner=trainer).revoked_at is not None


def test_logout_needs_a_token(api):
    assert api.post("/auth/logout").status_code == 401


def test_password_change_kills_every_token_at_once(api, trainer, persistent_token, task_token):
    temporary = login(api, trainer)

    services.user_set_password(actor=trainer, user=trainer, password="another-password-42")

    for token in (temporary, persistent_token, task_token):
        assert api.get(f"/test/task/beat/{TASK_ID}", **bearer(token)).status_code == 401
    assert PersistentToken.objects.get(owner=trainer).revoked_at is not None
    # The new password works and gives a working token.
    fresh = api.get("/auth/token", **basic("AATRN", "another-password-42")).json()["token"]
    assert api.get("/test/whoami", **bearer(fresh)).status_code == 200


def test_disabling_a_password_kills_every_token_at_once(
    api, trainer, tenant_admin, persistent_token, task_token
):
    temporary = login(api, trainer)

    services.user_set_password(actor=tenant_admin, user=trainer, password=None)

    for token in (temporary, persistent_token, task_token):
        assert api.get(f"/test/task/beat/{TASK_ID}", **bearer(token)).status_code == 401
    assert PersistentToken.objects.get(owner=trainer).revoked_at is not None


def test_password_change_by_set_password_outside_services_also_kills_tokens(
    api, trainer, persistent_token
):
    temporary = login(api, trainer)

    trainer.set_password("another-password-42")
    trainer.save()

    assert api.get("/test/whoami", **bearer(temporary)).status_code == 401
    assert api.get("/test/whoami", **bearer(persistent_token)).status_code == 401


def test_saving_a_user_without_a_password_change_keeps_tokens(api, trainer, persistent_token):
    temporary = login(api, trainer)
    trainer.first_name = "Renamed"
    trainer.save()
    assert api.get("/test/whoami", **bearer(temporary)).status_code == 200
    assert api.get("/test/whoami", **bearer(persistent_token)).status_code == 200


def test_deactivating_a_user_kills_every_token(
    api, trainer, tenant_admin, persistent_token, task_token
):
    temporary = login(api, trainer)

    services.user_deactivate(actor=tenant_admin, user=trainer)

    for token in (temporary, persistent_token, task_token):
        assert api.get(f"/test/task/beat/{TASK_ID}", **bearer(token)).status_code == 401


def test_deactivating_an_entity_kills_the_tokens_of_its_users(
    api, trainer, tenant, persistent_token, task_token
):
    temporary = login(api, trainer)

    tenant.is_active = False
    tenant.save()

    for token in (temporary, persistent_token, task_token):
        assert api.get(f"/test/task/beat/{TASK_ID}", **bearer(token)).status_code == 401


def test_tokens_stay_dead_when_a_deactivated_user_comes_back(
    api, trainer, tenant_admin, persistent_token, task_token
):
    temporary = login(api, trainer)
    services.user_deactivate(actor=tenant_admin, user=trainer)

    services.user_deactivate(actor=tenant_admin, user=trainer, is_active=True)

    for token in (temporary, persistent_token, task_token):
        assert api.get(f"/test/task/beat/{TASK_ID}", **bearer(token)).status_code == 401
    assert api.get("/test/whoami", **bearer(login(api, trainer))).status_code == 200


def test_tokens_stay_dead_when_a_deactivated_entity_comes_back(
    api, trainer, tenant, superadmin, other_user, persistent_token, task_token
):
    temporary = login(api, trainer)
    elsewhere = login(api, other_user)
    services.entity_update(actor=superadmin, entity=tenant, is_active=False)

    services.entity_update(actor=superadmin, entity=tenant, is_active=True)

    for token in (temporary, persistent_token, task_token):
        assert api.get(f"/test/task/beat/{TASK_ID}", **bearer(token)).status_code == 401
    assert api.get("/test/whoami", **bearer(login(api, trainer))).status_code == 200
    assert api.get("/test/whoami", **bearer(elsewhere)).status_code == 200  # other entity


# =============================================================================
# Brute force: failed logins per user name + client address
# =============================================================================
@override_settings(SNW_LOGIN_MAX_FAILURES=3, SNW_LOGIN_FAILURE_WINDOW=60)
def test_too_many_failures_answer_429_with_retry_after(api, trainer):
    for _ in range(3):
        assert api.get("/auth/token", **basic("AATRN", "wrong")).status_code == 401

    response = api.get("/auth/token", **basic("AATRN", "wrong"))
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    assert "message" in response.json()
    # Locked out: even the right password is not checked from this address.
    assert api.get("/auth/token", **basic("AATRN", PASSWORD)).status_code == 429


@override_settings(SNW_LOGIN_MAX_FAILURES=3, SNW_LOGIN_FAILURE_WINDOW=60)
def test_a_lock_out_does_not_block_the_user_from_another_address(api, trainer):
    attacker = {"REMOTE_ADDR": "203.0.113.9"}
    for _ in range(5):
        api.get("/auth/token", **basic("AATRN", "wrong"), **attacker)
    assert api.get("/auth/token", **basic("AATRN", PASSWORD), **attacker).status_code == 429

    assert login(api, trainer, REMOTE_ADDR="198.51.100.7").startswith("_T_")


@override_settings(SNW_LOGIN_MAX_FAILURES=3, SNW_LOGIN_FAILURE_WINDOW=60)
def test_a_lock_out_counts_per_user_name(api, trainer, tenant_admin):
    for _ in range(3):
        api.get("/auth/token", **basic("AATRN", "wrong"))
    assert api.get("/auth/token", **basic("AATRN", PASSWORD)).status_code == 429
    assert login(api, tenant_admin).startswith("_T_")


@override_settings(SNW_LOGIN_MAX_FAILURES=3, SNW_LOGIN_FAILURE_WINDOW=60)
def test_spoofed_forwarded_for_does_not_escape_the_limit(api, trainer):
    for n in range(3):
        api.get("/auth/token", **basic("AATRN", "wrong"), HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
    response = api.get("/auth/token", **basic("AATRN", "wrong"), HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert response.status_code == 429


@override_settings(SNW_LOGIN_MAX_FAILURES=2, SNW_LOGIN_FAILURE_WINDOW=1)
def test_a_lock_out_ends_with_its_window_and_is_not_extended(api, trainer):
    for _ in range(2):
        api.get("/auth/token", **basic("AATRN", "wrong"))
    assert api.get("/auth/token", **basic("AATRN", PASSWORD)).status_code == 429
    time.sleep(0.6)
    assert api.get("/auth/token", **basic("AATRN", "wrong")).status_code == 429  # not counted

    time.sleep(0.7)

    assert login(api, trainer).startswith("_T_")


@override_settings(SNW_LOGIN_MAX_FAILURES=3, SNW_LOGIN_FAILURE_WINDOW=60)
def test_a_successful_login_resets_the_failure_count(api, trainer):
    for _ in range(2):
        api.get("/auth/token", **basic("AATRN", "wrong"))
    login(api, trainer)
    for _ in range(2):
        assert api.get("/auth/token", **basic("AATRN", "wrong")).status_code == 401
    assert login(api, trainer).startswith("_T_")


# =============================================================================
# Redis unavailable
# =============================================================================
_DEAD_REDIS = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
    }
}


def test_without_redis_temporary_tokens_answer_503_and_persistent_ones_still_work(
    api, trainer, persistent_token
):
    temporary = login(api, trainer)
    with override_settings(CACHES=_DEAD_REDIS):
        assert api.get("/test/whoami", **bearer(temporary)).status_code == 503
        assert api.get("/auth/token", **basic("AATRN", PASSWORD)).status_code == 503
        assert api.get("/test/whoami", **bearer(persistent_token)).status_code == 200
