"""Self-service: a user changes their own profile (``PATCH /auth/me``) and password
(``POST /auth/password``); password rules hold on every surface that sets one."""

import pytest
from django.test import override_settings

from accounts.models import AuditEvent, User
from tests.accounts.auth_helpers import PASSWORD, basic, bearer, login

pytest_plugins = ["tests.accounts.conftest_auth"]
pytestmark = pytest.mark.django_db

NEW_PASSWORD = "another-long-passphrase"


# =============================================================================
# PATCH /auth/me
# =============================================================================
def test_a_user_changes_their_own_names_and_email(api, trainer):
    token = login(api, trainer)

    response = api.patch(
        "/auth/me",
        {"first_name": "Ada", "email": "ADA@Example.ORG"},
        format="json",
        **bearer(token),
    )

    assert response.status_code == 200, response.content
    assert response.json()["first_name"] == "Ada" and response.json()["email"] == "ADA@example.org"
    trainer.refresh_from_db()
    assert (trainer.first_name, trainer.email) == ("Ada", "ADA@example.org")
    event = AuditEvent.objects.get(action="user.update")
    assert event.actor == trainer and event.after["first_name"] == "Ada"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"entity": "BB", "first_name": "X"}, "entity"),
        ({"is_active": False}, "is_active"),
        ({"roles": ["lingadmin"]}, "roles"),
        ({"user_code": "NEW"}, "user_code"),
        ({"email": "not an email"}, "email"),
        ({}, "nothing to change"),
    ],
)
def test_anything_but_names_and_email_is_refused_by_name(api, trainer, body, field):
    token = login(api, trainer)
    before = User.objects.values().get(pk=trainer.pk)

    response = api.patch("/auth/me", body, format="json", **bearer(token))

    assert response.status_code == 400
    assert field in response.json()["message"]
    assert User.objects.values().get(pk=trainer.pk) == before
    assert not AuditEvent.objects.filter(action="user.update").exists()


# =============================================================================
# POST /auth/password
# =============================================================================
def _change(api, token, current=PASSWORD, new=NEW_PASSWORD):
    body = {"current_password": current, "new_password": new}
    return api.post("/auth/password", body, format="json", **bearer(token))


def test_changing_ones_password_revokes_every_token_then_the_new_one_logs_in(
    api, trainer, persistent_token
):
    token = login(api, trainer)

    response = _change(api, token)

    assert response.status_code == 200, response.content
    assert api.get("/auth/me", **bearer(token)).status_code == 401
    assert api.get("/auth/me", **bearer(persistent_token)).status_code == 401
    assert api.get("/auth/token", **basic(trainer.trainer_id, PASSWORD)).status_code == 401
    assert api.get("/auth/token", **basic(trainer.trainer_id, NEW_PASSWORD)).status_code == 200
    assert AuditEvent.objects.get(action="user.set_password").actor == trainer


def test_a_wrong_current_password_changes_nothing(api, trainer, persistent_token):
    token = login(api, trainer)

    response = _change(api, token, current="not-my-password")

    assert response.status_code == 400
    assert "current_password" in response.json()["message"]
    assert api.get("/auth/me", **bearer(token)).status_code == 200
    assert api.get("/auth/me", **bearer(persistent_token)).status_code == 200
    trainer.refresh_from_db()
    assert trainer.check_password(PASSWORD)


@pytest.mark.parametrize("weak", ["short", "12345678901", "password123", "aatrn2026"])
def test_a_weak_new_password_is_refused_naming_the_field(api, trainer, weak):
    token = login(api, trainer)

    response = _change(api, token, new=weak)

    assert response.status_code == 400
    assert "new_password" in response.json()["message"]
    trainer.refresh_from_db()
    assert trainer.check_password(PASSWORD)
    assert api.get("/auth/me", **bearer(token)).status_code == 200


@override_settings(SNW_LOGIN_MAX_FAILURES=2, SNW_LOGIN_FAILURE_WINDOW=60)
def test_guessing_the_current_password_with_a_token_is_rate_limited(api, trainer):
    token = login(api, trainer)
    for _ in range(2):
        assert _change(api, token, current="guess").status_code == 400

    response = _change(api, token)  # even the right one, from this address

    assert response.status_code == 429 and 0 < int(response["Retry-After"]) <= 60
    trainer.refresh_from_db()
    assert trainer.check_password(PASSWORD)


# =============================================================================
# Password rules on the administrators' API too
# =============================================================================
def test_an_administrator_cannot_set_a_weak_password_through_the_api(api, tenant_admin, trainer):
    token = login(api, tenant_admin)

    created = api.post(
        "/api/accounts/users/",
        {"user_code": "NEW", "password": "12345"},
        format="json",
        **bearer(token),
    )
    changed = api.patch(
        f"/api/accounts/users/{trainer.trainer_id}/",
        {"password": "password"},
        format="json",
        **bearer(token),
    )

    assert created.status_code == changed.status_code == 400
    assert "password" in created.json()["message"] and "password" in changed.json()["message"]
    assert not User.objects.filter(trainer_id="AANEW").exists()
    trainer.refresh_from_db()
    assert trainer.check_password(PASSWORD)
