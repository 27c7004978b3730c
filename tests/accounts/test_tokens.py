"""Issue 4: token storage (digests only), restricted task tokens, persistent tokens API."""

import json
import re
import time
from datetime import timedelta

import pytest
import redis
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from rest_framework.views import APIView

from accounts import tokens
from accounts.models import AuditEvent, PersistentToken
from tests.accounts import auth_urls
from tests.accounts.auth_helpers import OTHER_TASK_ID, TASK_ID, basic, bearer, login
from tests.factories import UserFactory

pytest_plugins = ["tests.accounts.conftest_auth"]
pytestmark = [pytest.mark.urls("tests.accounts.auth_urls"), pytest.mark.django_db]


# =============================================================================
# Generation and storage: only digests are stored
# =============================================================================
def test_tokens_are_prefixed_256_bit_urlsafe_secrets():
    temporary = tokens.generate_token(tokens.TEMPORARY_PREFIX)
    persistent = tokens.generate_token(tokens.PERSISTENT_PREFIX)

    assert re.fullmatch(r"_T_[A-Za-z0-9_-]{43}", temporary)
    assert re.fullmatch(r"_P_[A-Za-z0-9_-]{43}", persistent)
    assert tokens.token_kind(temporary) == "temporary"
    assert tokens.token_kind(persistent) == "persistent"
    assert tokens.token_kind("_T_" + "a" * 10) is None
    assert len({tokens.generate_token("_T_") for _ in range(1000)}) == 1000
    assert len(tokens.token_digest(temporary)) == 64


def _redis_dump(redis_url) -> list[bytes]:
    """Every key and every value of the test Redis database, as bytes (cache values are binary)."""
    client = redis.Redis.from_url(redis_url)
    dump = []
    for key in client.keys("*"):
        dump.append(key)
        kind = client.type(key).decode()
        if kind == "string":
            dump.append(client.get(key))
        elif kind == "set":
            dump.extend(client.smembers(key))
        elif kind == "hash":
            dump.extend(k + b"=" + v for k, v in client.hgetall(key).items())
        elif kind == "list":
            dump.extend(client.lrange(key, 0, -1))
        elif kind == "zset":
            dump.extend(client.zrange(key, 0, -1))
        else:
            pytest.fail(f"unexpected Redis type {kind} for {key}")
    client.close()
    return dump


def _sql_dump() -> list[bytes]:
    rows = list(PersistentToken.objects.values_list())
    rows += list(AuditEvent.objects.filter(object_type="PersistentToken").values_list())
    return [str(value).encode() for row in rows for value in row]


def test_no_raw_token_is_stored_in_redis_or_sql(api, trainer, redis_url):
    issued = [
        login(api, trainer),
        tokens.mint_task_token(TASK_ID, trainer),
        api.post("/auth/tokens", {"name": "ci"}, **bearer(login(api, trainer))).json()["token"],
    ]
    # Use them all once (persistent: writes last_used_at).
    for token in issued:
        assert api.get(f"/test/task/beat/{TASK_ID}", **bearer(token)).status_code == 200

    stored = _redis_dump(redis_url) + _sql_dump()
    assert len(stored) > 10
    secrets = [token[3:].encode() for token in issued]
    for value in stored:
        for secret in secrets:
            assert secret not in value
    # Positive control: what is stored is the digest.
    digests = {tokens.token_digest(token).encode() for token in issued}
    assert digests <= {d for value in stored for d in digests if d in value}


def test_temporary_token_record_holds_user_restriction_stamp_and_session_only(
    trainer, redis_client
):
    before = int(time.time())
    issued = tokens.temporary_token_create(user=trainer, duration=60, task_id=TASK_ID)
    record = redis_client.get(tokens.AuthKeys.temporary(issued.digest))

    session = json.loads(record).pop("session")
    assert json.loads(record) == {
        "user": trainer.pk,
        "task": TASK_ID,
        "stamp": tokens.auth_stamp(trainer),
        "session": session,
    }
    assert before <= session <= time.time()
    assert trainer.password not in record


def test_tokens_stamped_before_epochs_existed_stay_valid(trainer, redis_client):
    """Epoch 0 stamps the password hash alone, as the first releases did: an upgrade must not
    kill running tasks' 30-day callback tokens."""
    legacy = salted_hmac(tokens._STAMP_SALT, trainer.password, algorithm="sha256").hexdigest()
    issued = tokens.temporary_token_create(user=trainer, duration=60)
    record = {"user": trainer.pk, "task": None, "stamp": legacy}
    redis_client.set(tokens.AuthKeys.temporary(issued.digest), json.dumps(record), ex=60)

    user, _ = tokens.token_authenticate(issued.token)

    assert user.pk == trainer.pk and trainer.token_epoch == 0


# =============================================================================
# Cost of authentication: no password hashing, one lookup, one user load
# =============================================================================
def test_temporary_token_costs_one_sql_query(api, trainer):
    token = login(api, trainer)
    with CaptureQueriesContext(connection) as queries:
        user, info = tokens.token_authenticate(token)
    assert (user, info.kind, len(queries)) == (trainer, "temporary", 1)
    assert user.entity.entity_code == "AA"  # loaded with the user


def test_persistent_token_costs_one_query_and_touches_last_used_at_once_a_minute(
    trainer, persistent_token
):
    with CaptureQueriesContext(connection) as first:
        tokens.token_authenticate(persistent_token)
    touched = PersistentToken.objects.get(owner=trainer).last_used_at
    with CaptureQueriesContext(connection) as second:
        user, info = tokens.token_authenticate(persistent_token)

    assert info.kind == "persistent"
    assert len(first) == 2  # lookup + the first last_used_at write
    assert len(second) == 1
    assert touched is not None
    assert PersistentToken.objects.get(owner=trainer).last_used_at == touched
    assert user.entity.entity_code == "AA"

    PersistentToken.objects.update(last_used_at=timezone.now() - timedelta(seconds=61))
    tokens.token_authenticate(persistent_token)
    assert PersistentToken.objects.get(owner=trainer).last_used_at > touched


# =============================================================================
# Restricted (task) tokens
# =============================================================================
def test_task_token_opens_the_callback_routes_of_its_task(api, trainer, task_token):
    for path in (
        f"/test/task/beat/{TASK_ID}",
        f"/test/tasks/{TASK_ID}/beat",
        f"/test/custom/{TASK_ID}",
    ):
        response = api.get(path, **basic(task_token, "x"))
        assert response.status_code == 200, path
        assert response.json() == {"trainer_id": "AATRN", "kind": "temporary", "task_id": TASK_ID}
    assert api.put(f"/test/tasks/{TASK_ID}/beat", **bearer(task_token)).status_code == 200


def test_task_token_is_refused_on_another_tasks_callbacks(api, trainer, task_token):
    for path in (
        f"/test/task/beat/{OTHER_TASK_ID}",
        f"/test/tasks/{OTHER_TASK_ID}/beat",
        f"/test/custom/{OTHER_TASK_ID}",
    ):
        response = api.get(path, **bearer(task_token))
        assert response.status_code == 403, path
        assert response.json() == {"message": "This token belongs to another task."}


_METHODS = ("get", "post", "put", "patch", "delete")


def _drf_routes(patterns, namespace=""):
    """(reverse name, URL kwarg names, {method: is a callback}) of every DRF route."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _drf_routes(pattern.url_patterns, ns)
            continue
        assert isinstance(pattern, URLPattern)
        view_class = getattr(pattern.callback, "cls", None)
        if view_class is None or not issubclass(view_class, APIView):
            continue  # not DRF: tokens are not accepted there at all (anonymous)
        assert pattern.name, f"unnamed DRF route {pattern.pattern}"
        declared = getattr(view_class, "task_callback", False)
        actions = getattr(pattern.callback, "actions", None)  # ViewSets: method -> action
        if actions is None:
            served = {m: declared is True for m in _METHODS if hasattr(view_class, m)}
        else:
            served = {
                m: declared is True
                or (isinstance(declared, set | frozenset | tuple | list) and a in declared)
                for m, a in actions.items()
            }
        kwarg_names = list(pattern.pattern.regex.groupindex)
        yield f"{namespace}{pattern.name}", kwarg_names, served


def _route_path(name, kwarg_names, task_id):
    # Every URL kwarg gets the task id where it can hold one (the worst case for a sweep).
    return reverse(name, kwargs={k: ("1" if k in {"pk", "id"} else task_id) for k in kwarg_names})


def test_task_token_is_refused_on_every_non_callback_route(api, trainer, task_token):
    """Sweeps every DRF route of the project (and of the test URLconf), every method it serves."""
    routes = list(_drf_routes(get_resolver(auth_urls).url_patterns))
    names = {name for name, _, _ in routes}
    assert {"auth-token", "auth-logout", "auth-tokens-list", "auth-tokens-detail"} <= names
    assert {"schema", "test-whoami", "test-terminate", "test-tasks-detail"} <= names
    checked = 0
    for name, kwarg_names, served in routes:
        for method, is_callback in served.items():
            if is_callback:
                continue  # the next test: refused for another task
            path = _route_path(name, kwarg_names, TASK_ID)
            response = getattr(api, method)(path, **bearer(task_token))
            if name == "auth-token":
                # Passwords only there: a token is not even a credential (never a login).
                assert response.status_code == 401, (method, path)
            else:
                assert response.status_code == 403, (method, path, response.status_code)
            checked += 1
    assert checked >= 15


def test_task_token_is_refused_on_every_callback_route_of_another_task(api, trainer, task_token):
    callbacks = [
        (name, kwarg_names, method)
        for name, kwarg_names, served in _drf_routes(get_resolver(auth_urls).url_patterns)
        for method, is_callback in served.items()
        if is_callback
    ]
    assert {name for name, _, _ in callbacks} >= auth_urls.CALLBACK_ROUTE_NAMES
    for name, kwarg_names, method in callbacks:
        path = _route_path(name, kwarg_names, OTHER_TASK_ID)
        response = getattr(api, method)(path, **bearer(task_token))
        assert response.status_code == 403, (method, path, response.status_code)


def test_non_callback_actions_of_a_callback_viewset_are_closed(api, trainer, task_token):
    assert api.get(f"/test/tasks/{TASK_ID}", **bearer(task_token)).status_code == 403
    assert api.post(f"/test/tasks/{TASK_ID}/terminate", **bearer(task_token)).status_code == 403
    assert api.get(f"/test/lying/{TASK_ID}", **bearer(task_token)).status_code == 403


def test_unrestricted_tokens_also_open_callback_routes(api, trainer):
    token = login(api, trainer)
    assert api.get(f"/test/task/beat/{TASK_ID}", **bearer(token)).status_code == 200
    assert api.get(f"/test/tasks/{TASK_ID}", **bearer(token)).status_code == 200


def test_revoke_task_token_kills_every_token_of_the_task_only(api, trainer, redis_client):
    first = tokens.mint_task_token(TASK_ID, trainer)
    second = tokens.mint_task_token(TASK_ID, "AATRN", duration=30)
    other = tokens.mint_task_token(OTHER_TASK_ID, {"entity": "AA", "trainer_id": "AATRN"})

    assert tokens.revoke_task_token(TASK_ID) == 2

    assert api.get(f"/test/task/beat/{TASK_ID}", **bearer(first)).status_code == 401
    assert api.get(f"/test/task/beat/{TASK_ID}", **bearer(second)).status_code == 401
    assert api.get(f"/test/task/beat/{OTHER_TASK_ID}", **bearer(other)).status_code == 200
    assert not redis_client.exists(tokens.AuthKeys.task_tokens(TASK_ID))
    assert tokens.revoke_task_token(TASK_ID) == 0


def test_task_index_lives_as_long_as_its_longest_token(trainer, redis_client):
    tokens.mint_task_token(TASK_ID, trainer, duration=1000)
    tokens.mint_task_token(TASK_ID, trainer, duration=10)
    assert redis_client.ttl(tokens.AuthKeys.task_tokens(TASK_ID)) > 990
    tokens.mint_task_token(TASK_ID, trainer, duration=5000)
    assert redis_client.ttl(tokens.AuthKeys.task_tokens(TASK_ID)) > 4990


def test_task_token_default_duration_is_the_setting(trainer, redis_client, settings):
    token = tokens.mint_task_token(TASK_ID, trainer)
    ttl = redis_client.ttl(tokens.AuthKeys.temporary(tokens.token_digest(token)))
    assert settings.SNW_TASK_TOKEN_DURATION - 10 <= ttl <= settings.SNW_TASK_TOKEN_DURATION


@pytest.mark.parametrize("task_id", ["", "../x", "a b", "x" * 201, None])
def test_mint_task_token_refuses_bad_task_ids(trainer, task_id):
    with pytest.raises(ValueError, match="task id"):
        tokens.mint_task_token(task_id, trainer)


def test_a_task_token_cannot_log_out_or_mint_tokens(api, trainer, task_token):
    assert api.post("/auth/logout", **bearer(task_token)).status_code == 403
    response = api.post("/auth/tokens", {"name": "escape"}, **bearer(task_token))
    assert response.status_code == 403
    assert not PersistentToken.objects.exists()


# =============================================================================
# Persistent tokens: create, list, revoke, with owner and administrator scoping
# =============================================================================
def _create(api, user, name="ci", **extra) -> dict:
    response = api.post("/auth/tokens", {"name": name, **extra}, **bearer(login(api, user)))
    assert response.status_code == 201, response.content
    return response.json()


def test_create_shows_the_token_once(api, trainer):
    body = _create(api, trainer, name="nightly")

    assert body["token"].startswith("_P_")
    assert body["owner"] == "AATRN" and body["name"] == "nightly" and body["active"] is True
    assert body["expires_at"] is None and body["revoked_at"] is None
    row = PersistentToken.objects.get(pk=body["id"])
    assert row.digest == tokens.token_digest(body["token"])
    assert api.get("/test/whoami", **bearer(body["token"])).json()["trainer_id"] == "AATRN"

    listed = api.get("/auth/tokens", **bearer(body["token"])).json()
    detail = api.get(f"/auth/tokens/{body['id']}", **bearer(body["token"])).json()
    for shown in (listed[0], detail):
        assert "token" not in shown and "digest" not in shown
    assert AuditEvent.objects.filter(action="persistent_token.create", actor=trainer).exists()


def test_create_with_an_expiry(api, trainer):
    expires = timezone.now() + timedelta(days=7)
    body = _create(api, trainer, expires_at=expires.isoformat())
    assert PersistentToken.objects.get(pk=body["id"]).expires_at == expires


def test_create_refuses_a_past_expiry_and_a_duplicate_active_name(api, trainer):
    token = login(api, trainer)
    past = (timezone.now() - timedelta(seconds=1)).isoformat()
    response = api.post("/auth/tokens", {"name": "x", "expires_at": past}, **bearer(token))
    assert response.status_code == 400 and "expires_at" in response.json()["errors"]

    _create(api, trainer, name="ci")
    response = api.post("/auth/tokens", {"name": "ci"}, **bearer(token))
    assert response.status_code == 400
    assert response.json()["message"].startswith("name:")
    missing = api.post("/auth/tokens", {}, **bearer(token))
    assert missing.status_code == 400 and "name" in missing.json()["errors"]


def test_a_revoked_name_can_be_reused(api, trainer):
    first = _create(api, trainer, name="ci")
    token = login(api, trainer)
    assert api.delete(f"/auth/tokens/{first['id']}", **bearer(token)).status_code == 204
    assert _create(api, trainer, name="ci")["id"] != first["id"]


def test_expired_persistent_token_answers_401(api, trainer, persistent_token):
    PersistentToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = api.get("/test/whoami", **bearer(persistent_token))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="snw"'
    listed = api.get("/auth/tokens", **bearer(login(api, trainer))).json()
    assert listed[0]["active"] is False


def test_owner_lists_and_revokes_their_own_tokens(api, trainer):
    mine = _create(api, trainer, name="mine")
    token = login(api, trainer)

    assert [t["name"] for t in api.get("/auth/tokens", **bearer(token)).json()] == ["mine"]
    assert api.delete(f"/auth/tokens/{mine['id']}", **bearer(token)).status_code == 204
    assert api.delete(f"/auth/tokens/{mine['id']}", **bearer(token)).status_code == 204  # again

    assert api.get("/test/whoami", **bearer(mine["token"])).status_code == 401
    shown = api.get(f"/auth/tokens/{mine['id']}", **bearer(token)).json()
    assert shown["active"] is False and shown["revoked_at"] is not None
    assert AuditEvent.objects.filter(action="persistent_token.revoke").count() == 1


def test_entity_admin_lists_and_revokes_the_tokens_of_their_entity(api, trainer, tenant_admin):
    trainers = _create(api, trainer, name="trainer-ci")
    _create(api, tenant_admin, name="admin-ci")
    admin = login(api, tenant_admin)

    listed = api.get("/auth/tokens", **bearer(admin)).json()
    assert sorted(t["name"] for t in listed) == ["admin-ci", "trainer-ci"]
    only = api.get("/auth/tokens?owner=AATRN", **bearer(admin)).json()
    assert [t["name"] for t in only] == ["trainer-ci"]

    assert api.delete(f"/auth/tokens/{trainers['id']}", **bearer(admin)).status_code == 204
    assert api.get("/test/whoami", **bearer(trainers["token"])).status_code == 401
    event = AuditEvent.objects.get(action="persistent_token.revoke")
    assert (event.actor, event.entity_code) == (tenant_admin, "AA")


def test_a_plain_user_sees_only_their_own_tokens(api, trainer, tenant_admin):
    admins = _create(api, tenant_admin, name="admin-ci")
    _create(api, trainer, name="trainer-ci")
    token = login(api, trainer)

    assert [t["name"] for t in api.get("/auth/tokens", **bearer(token)).json()] == ["trainer-ci"]
    assert api.get(f"/auth/tokens/{admins['id']}", **bearer(token)).status_code == 404
    assert api.delete(f"/auth/tokens/{admins['id']}", **bearer(token)).status_code == 404
    assert api.get("/test/whoami", **bearer(admins["token"])).status_code == 200


def test_another_entitys_admin_cannot_see_or_revoke(api, trainer, other_admin, other_user):
    trainers = _create(api, trainer, name="trainer-ci")
    _create(api, other_user, name="bb-ci")
    outsider = login(api, other_admin)

    assert [t["name"] for t in api.get("/auth/tokens", **bearer(outsider)).json()] == ["bb-ci"]
    not_found = api.get(f"/auth/tokens/{trainers['id']}", **bearer(outsider))
    assert not_found.status_code == 404 and "message" in not_found.json()
    assert api.delete(f"/auth/tokens/{trainers['id']}", **bearer(outsider)).status_code == 404
    assert api.get("/test/whoami", **bearer(trainers["token"])).status_code == 200


def test_an_entity_admin_cannot_revoke_a_super_admins_token(api, sa, superadmin):
    sa_lingadmin = UserFactory(entity=sa, user_code="LNG", roles=["lingadmin"])
    script = _create(api, superadmin, name="nightly")

    refused = api.delete(f"/auth/tokens/{script['id']}", **bearer(login(api, sa_lingadmin)))

    assert refused.status_code == 403 and "SAADM holds" in refused.json()["message"]
    assert api.get("/test/whoami", **bearer(script["token"])).status_code == 200


def test_super_admin_sees_every_entitys_tokens(api, trainer, other_user, superadmin):
    _create(api, trainer, name="aa-ci")
    _create(api, other_user, name="bb-ci")
    listed = api.get("/auth/tokens", **bearer(login(api, superadmin))).json()
    assert sorted(t["owner"] for t in listed) == ["AATRN", "BBUSR"]


def test_a_persistent_token_can_manage_persistent_tokens(api, trainer, persistent_token):
    response = api.post("/auth/tokens", {"name": "second"}, **bearer(persistent_token))
    assert response.status_code == 201
    listed = api.get("/auth/tokens", **bearer(persistent_token)).json()
    assert sorted(t["name"] for t in listed) == ["ci", "second"]


# =============================================================================
# OpenAPI
# =============================================================================
@pytest.mark.urls("snw_site.urls")
def test_openapi_schema_validates_without_warnings():
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")
