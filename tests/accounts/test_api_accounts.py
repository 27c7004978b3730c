"""The accounts REST API (issue 8): the scoping and escalation matrix of every endpoint.

Personas (``tests/accounts/conftest.py``): the super admin (SA), A's administrator and trainer,
B's administrator and user. Out-of-scope rows answer 404 like missing ones, visible rows one
may not change answer 403, and naming another entity's objects in a body is "does not exist".
"""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts import services
from accounts.models import AuditEvent, Group, Role, ShareRole, User
from accounts.tokens import temporary_token_create
from tests.accounts.conftest import role

pytestmark = pytest.mark.django_db

BASE = "/api/accounts"


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {temporary_token_create(user=user).token}")
    return client


@pytest.fixture
def world(superadmin, tenant_admin, trainer, other_admin, other_user):
    """Every persona, a group in each tenant (the trainer in A's), and a share B -> A."""
    group_a = services.group_create(actor=None, entity=tenant_admin.entity, name="team-a")
    services.group_add_member(actor=None, group=group_a, user=trainer)
    group_b = services.group_create(actor=None, entity=other_admin.entity, name="team-b")
    share = services.share_role_create(
        actor=None, role=role(other_admin.entity, "user"), entity=tenant_admin.entity
    )
    return {
        "superadmin": superadmin,
        "admin_a": tenant_admin,
        "trainer_a": trainer,
        "admin_b": other_admin,
        "user_b": other_user,
        "group_a": group_a,
        "group_b": group_b,
        "share_ba": share,
    }


@pytest.fixture
def as_(world):
    return {
        name: client_for(world[name]) for name in ("superadmin", "admin_a", "trainer_a", "admin_b")
    }


def ids(response, key="id"):
    assert response.status_code == 200, response.content
    return {row[key] for row in response.json()}


# =============================================================================
# Anonymous
# =============================================================================
@pytest.mark.parametrize(
    "path", ["entities/", "users/", "groups/", "roles/", "shares/", "users/AAADM/", "groups/1/"]
)
def test_anonymous_is_refused(db, path):
    assert APIClient().get(f"{BASE}/{path}").status_code == 401
    assert APIClient().get("/auth/me").status_code == 401


# =============================================================================
# Lists are scoped
# =============================================================================
def test_users_list_scoping(as_, world):
    assert ids(as_["admin_a"].get(f"{BASE}/users/"), "trainer_id") == {"AAADM", "AATRN"}
    assert ids(as_["admin_b"].get(f"{BASE}/users/"), "trainer_id") == {"BBADM", "BBUSR"}
    assert ids(as_["trainer_a"].get(f"{BASE}/users/"), "trainer_id") == {"AATRN"}
    assert ids(as_["superadmin"].get(f"{BASE}/users/"), "trainer_id") == {
        "SAADM",
        "AAADM",
        "AATRN",
        "BBADM",
        "BBUSR",
    }
    assert ids(as_["superadmin"].get(f"{BASE}/users/?entity=bb"), "trainer_id") == {
        "BBADM",
        "BBUSR",
    }


def test_groups_roles_shares_entities_list_scoping(as_, world):
    assert ids(as_["admin_a"].get(f"{BASE}/groups/")) == {world["group_a"].pk}
    assert ids(as_["trainer_a"].get(f"{BASE}/groups/")) == {world["group_a"].pk}
    assert ids(as_["admin_b"].get(f"{BASE}/groups/")) == {world["group_b"].pk}
    roles_a = {r["entity"] for r in as_["admin_a"].get(f"{BASE}/roles/").json()}
    # A's roles and the role B shares with A, nothing else of B.
    assert roles_a == {"AA", "BB"}
    shared = [r for r in as_["admin_a"].get(f"{BASE}/roles/").json() if r["entity"] == "BB"]
    assert [r["name"] for r in shared] == ["user"]
    assert {r["name"] for r in as_["trainer_a"].get(f"{BASE}/roles/").json()} == {"trainer"}
    assert ids(as_["admin_a"].get(f"{BASE}/shares/")) == {world["share_ba"].pk}
    assert ids(as_["trainer_a"].get(f"{BASE}/shares/")) == set()
    assert ids(as_["admin_a"].get(f"{BASE}/entities/"), "entity_code") == {"AA"}
    assert ids(as_["superadmin"].get(f"{BASE}/entities/"), "entity_code") == {"SA", "AA", "BB"}


# =============================================================================
# Another entity's rows: 404 on read and write; visible but not changeable: 403
# =============================================================================
def _detail_paths(world):
    return {
        "users": world["user_b"].trainer_id,
        "groups": world["group_b"].pk,
        "roles": role(world["admin_b"].entity, "trainer").pk,
        "entities": "BB",
    }


@pytest.mark.parametrize("resource", ["users", "groups", "roles", "entities"])
@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_other_entity_rows_answer_404(as_, world, resource, method):
    lookup = _detail_paths(world)[resource]
    path = f"{BASE}/{resource}/{lookup}/"
    response = getattr(as_["admin_a"], method)(path, {}, format="json")
    assert response.status_code == 404, response.content
    # The sentence of a row that does not exist at all: nothing tells "exists elsewhere".
    kind = {"users": "user", "groups": "group", "roles": "role", "entities": "entity"}[resource]
    assert response.json()["message"] == f"{kind} {lookup} does not exist"
    # The super admin reaches it (so 404 above means "out of scope", not "missing").
    assert as_["superadmin"].get(path).status_code == 200


def test_visible_but_not_changeable_answers_403(as_, world):
    trainer = as_["trainer_a"]
    assert trainer.get(f"{BASE}/users/AATRN/").status_code == 200
    assert (
        trainer.patch(f"{BASE}/users/AATRN/", {"first_name": "x"}, format="json").status_code == 403
    )
    assert trainer.delete(f"{BASE}/groups/{world['group_a'].pk}/").status_code == 403
    trainer_role = role(world["trainer_a"].entity, "trainer")
    assert (
        trainer.patch(f"{BASE}/roles/{trainer_role.pk}/", {"name": "x"}, format="json").status_code
        == 403
    )
    # A sees the share it receives from B but only B may withdraw it.
    assert as_["admin_a"].delete(f"{BASE}/shares/{world['share_ba'].pk}/").status_code == 403
    assert (
        as_["admin_a"].patch(f"{BASE}/entities/AA/", {"name": "x"}, format="json").status_code
        == 403
    )
    assert (
        as_["admin_a"].post(f"{BASE}/entities/", {"entity_code": "CC", "name": "C"}).status_code
        == 403
    )
    assert ShareRole.objects.filter(pk=world["share_ba"].pk).exists()


# =============================================================================
# Creating and updating, including bodies naming another entity's objects
# =============================================================================
def test_admin_creates_user_with_role_and_group(as_, world):
    trainer_role = role(world["admin_a"].entity, "trainer")
    response = as_["admin_a"].post(
        f"{BASE}/users/",
        {
            "user_code": "NEW",
            "password": "a-long-password-1",
            "roles": [trainer_role.pk],
            "groups": [world["group_a"].pk],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["trainer_id"] == "AANEW" and body["entity"] == "AA"
    assert [r["name"] for r in body["roles"]] == ["trainer"]
    assert [g["name"] for g in body["groups"]] == ["team-a"]
    assert "password" not in body
    assert User.objects.get(trainer_id="AANEW").check_password("a-long-password-1")
    actions = set(
        AuditEvent.objects.filter(actor=world["admin_a"]).values_list("action", flat=True)
    )
    assert {"user.create", "role.assign", "group.add_member"} <= actions


@pytest.mark.parametrize(
    "body_of",
    [
        lambda w: {"user_code": "NEW", "entity": "BB"},
        lambda w: {"user_code": "NEW", "roles": [role(w["admin_b"].entity, "user").pk]},
        lambda w: {"user_code": "NEW", "groups": [w["group_b"].pk]},
        lambda w: {"user_code": "NEW", "entity": "SA"},
    ],
    ids=["entity", "role", "group", "super-entity"],
)
def test_user_create_naming_other_entity_objects_is_refused(as_, world, body_of):
    response = as_["admin_a"].post(f"{BASE}/users/", body_of(world), format="json")
    assert response.status_code == 400, response.content
    assert "does not exist" in response.json()["message"]
    assert not User.objects.filter(user_code="NEW").exists()


def test_user_update_cannot_take_other_entity_objects_nor_move(as_, world):
    path = f"{BASE}/users/AATRN/"
    client = as_["admin_a"]
    foreign_role = role(world["admin_b"].entity, "trainer").pk
    assert client.patch(path, {"roles": [foreign_role]}, format="json").status_code == 400
    assert client.patch(path, {"groups": [world["group_b"].pk]}, format="json").status_code == 400
    response = client.patch(path, {"entity": "BB"}, format="json")
    assert response.status_code == 400 and "entity" in response.json()["errors"]
    response = client.patch(path, {"first_name": "Ada", "groups": []}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["first_name"] == "Ada" and response.json()["groups"] == []


def test_group_create_and_update_are_scoped(as_, world):
    client = as_["admin_a"]
    bad = client.post(f"{BASE}/groups/", {"name": "g", "members": ["BBUSR"]}, format="json")
    assert bad.status_code == 400 and "does not exist" in bad.json()["message"]
    bad = client.post(
        f"{BASE}/groups/",
        {"name": "g", "roles": [role(world["admin_b"].entity, "user").pk]},
        format="json",
    )
    assert bad.status_code == 400
    trainer_role = role(world["admin_a"].entity, "trainer")
    response = client.post(
        f"{BASE}/groups/",
        {"name": "trainers", "members": ["AATRN"], "roles": [trainer_role.pk]},
        format="json",
    )
    assert response.status_code == 201, response.content
    group_id = response.json()["id"]
    response = client.patch(
        f"{BASE}/groups/{group_id}/", {"description": "all trainers", "members": []}, format="json"
    )
    assert response.status_code == 200 and response.json()["members"] == []
    assert client.delete(f"{BASE}/groups/{group_id}/").status_code == 204
    assert not Group.objects.filter(pk=group_id).exists()


def test_role_grants_respect_the_no_escalation_rule(as_, world):
    client = as_["admin_a"]
    # lingadmin holds no edit_config: A's admin cannot hand it out.
    response = client.post(
        f"{BASE}/roles/",
        {"name": "pools", "grants": [{"permission": "edit_config"}]},
        format="json",
    )
    assert response.status_code == 403, response.content
    response = client.post(
        f"{BASE}/roles/", {"name": "god", "grants": [{"permission": "admin"}]}, format="json"
    )
    assert response.status_code == 403
    assert not Role.objects.filter(name__in=["pools", "god"]).exists()
    response = client.post(
        f"{BASE}/roles/",
        {"name": "readers", "grants": [{"permission": "user"}, {"permission": "train"}]},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert {(g["permission"], g["entity"]) for g in response.json()["grants"]} == {
        ("user", "AA"),
        ("train", "AA"),
    }
    role_id = response.json()["id"]
    response = client.patch(
        f"{BASE}/roles/{role_id}/", {"grants": [{"permission": "user"}]}, format="json"
    )
    assert [g["permission"] for g in response.json()["grants"]] == ["user"]
    assert client.delete(f"{BASE}/roles/{role_id}/").status_code == 204


def test_shared_roles_allow_grants_on_the_sharing_entity_only(as_, world):
    client = as_["admin_a"]
    # B shares its `user` role with A: A may build a role holding user@BB ...
    response = client.post(
        f"{BASE}/roles/",
        {"name": "read-b", "grants": [{"permission": "user", "entity": "BB"}]},
        format="json",
    )
    assert response.status_code == 201, response.content
    # ... but not train@BB (not shared), and SA shares nothing with A: unknown to A.
    response = client.post(
        f"{BASE}/roles/",
        {"name": "train-b", "grants": [{"permission": "train", "entity": "BB"}]},
        format="json",
    )
    assert response.status_code == 403, response.content
    response = client.post(
        f"{BASE}/roles/",
        {"name": "sa", "grants": [{"permission": "user", "entity": "SA"}]},
        format="json",
    )
    assert response.status_code == 400 and "does not exist" in response.json()["message"]
    # Withdrawing the share: B's administrator, not A's.
    share = world["share_ba"].pk
    assert as_["admin_b"].delete(f"{BASE}/shares/{share}/").status_code == 204


def test_share_create_is_scoped(as_, world):
    client = as_["admin_a"]
    foreign = role(world["admin_b"].entity, "trainer").pk
    response = client.post(f"{BASE}/shares/", {"role": foreign, "entity": "SA"}, format="json")
    assert response.status_code == 400 and "does not exist" in response.json()["message"]
    mine = role(world["admin_a"].entity, "user").pk
    response = client.post(f"{BASE}/shares/", {"role": mine, "entity": "ZZ"}, format="json")
    assert response.status_code == 400
    response = client.post(f"{BASE}/shares/", {"role": mine, "entity": "BB"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["owner_entity"] == "AA" and response.json()["entity"] == "BB"
    assert client.patch(f"{BASE}/shares/{response.json()['id']}/", {}).status_code == 405


def test_entity_admin_cannot_lock_out_a_super_admin(as_, world, superadmin):
    # SA's admin is out of A's scope: 404, whatever the method.
    assert as_["admin_a"].patch(f"{BASE}/users/SAADM/", {"password": "x"}).status_code == 404


def test_password_and_deactivation(as_, world):
    client = as_["admin_a"]
    response = client.patch(
        f"{BASE}/users/AATRN/", {"password": "another-password-2"}, format="json"
    )
    assert response.status_code == 200
    assert User.objects.get(trainer_id="AATRN").check_password("another-password-2")
    assert client.delete(f"{BASE}/users/AATRN/").status_code == 204
    assert not User.objects.get(trainer_id="AATRN").is_active
    # The last administrator of A cannot deactivate themselves.
    response = client.delete(f"{BASE}/users/AAADM/")
    assert response.status_code == 400 and "administrator" in response.json()["message"]


# =============================================================================
# Entities: admin_entity only
# =============================================================================
def test_super_admin_manages_entities(as_, world):
    client = as_["superadmin"]
    response = client.post(f"{BASE}/entities/", {"entity_code": "CC", "name": "C"}, format="json")
    assert response.status_code == 201, response.content
    assert Role.objects.filter(entity__entity_code="CC", name="trainer").exists()
    response = client.patch(f"{BASE}/entities/cc/", {"name": "Entity C"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "Entity C"
    assert client.delete(f"{BASE}/entities/CC/").status_code == 204
    assert client.get(f"{BASE}/entities/CC/").json()["is_active"] is False
    assert client.delete(f"{BASE}/entities/SA/").status_code == 400
    bad = client.post(f"{BASE}/entities/", {"entity_code": "c1", "name": "x"}, format="json")
    assert bad.status_code == 400


# =============================================================================
# /auth/me
# =============================================================================
def test_me(as_, world):
    body = as_["trainer_a"].get("/auth/me").json()
    assert body["trainer_id"] == "AATRN"
    assert body["entity"] == {"entity_code": "AA", "name": "Tenant A"}
    assert body["abilities"] == {"AA": ["train", "user"]}
    assert body["is_admin"] is False and body["can_manage_entities"] is False
    assert as_["superadmin"].get("/auth/me").json()["can_manage_entities"] is True


@pytest.mark.parametrize(
    "path", ["/api/accounts/groups/1/extra/", "/api/accounts/nothing", "/auth/nothing"]
)
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unknown_api_paths_answer_a_json_404(path, method):
    """API clients parse every answer as JSON: no HTML page (nor a CSRF page for a POST),
    even for a path no route has."""
    response = getattr(Client(enforce_csrf_checks=True), method)(path)
    assert response.status_code == 404
    assert response.json() == {"message": "no such route"}


# =============================================================================
# Malformed filters: a clear 400 naming the parameter (a NUL would be a PostgreSQL error)
# =============================================================================
@pytest.mark.parametrize("value", ["A\x00", "AAA", "1A"])
@pytest.mark.parametrize("resource", ["users", "groups", "roles"])
def test_a_malformed_entity_filter_is_refused_naming_it(as_, resource, value):
    response = as_["admin_a"].get(f"{BASE}/{resource}/", {"entity": value})

    assert response.status_code == 400
    assert response.json()["errors"] == {"entity": ["expected a 2-letter entity code"]}


@pytest.mark.parametrize("value", ["AA\x00TR", "AATRNX"])
def test_a_malformed_token_owner_filter_is_refused_naming_it(as_, value):
    response = as_["admin_a"].get("/auth/tokens", {"owner": value})

    assert response.status_code == 400 and "owner" in response.json()["message"]
