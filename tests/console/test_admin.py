"""The console (Django admin scoped per entity): smoke tests of every registered model as the
super admin and as an entity administrator, and cross-tenant negatives."""

import re

import pytest
from django.contrib import admin
from django.urls import reverse

from accounts.models import AuditEvent, Entity, Group, Role, ShareRole, User
from tests.console.conftest import logged_in, role

pytestmark = pytest.mark.django_db

MODELS = [User, Group, Role, ShareRole, Entity, AuditEvent]
#: What an entity administrator may open (entities are for admin_entity holders only).
TENANT_MODELS = [User, Group, Role, ShareRole, AuditEvent]
#: Strings of tenant B that must never appear in tenant A's pages.
B_MARKERS = ("BBADM", "BBUSR", "bravo-team", "Tenant B", "Bravoname", "BB/")


def url(model, view, *args):
    return reverse(f"admin:accounts_{model._meta.model_name}_{view}", args=args)


def sample(model, world):
    """One row of A (or, for entities, A itself) to open the change page of."""
    return {
        User: lambda: world["trainer"],
        Group: lambda: world["rows"]["group_a"],
        Role: lambda: role(world["trainer"].entity, "trainer"),
        ShareRole: lambda: world["rows"]["share_a"],
        Entity: lambda: world["trainer"].entity,
        AuditEvent: lambda: AuditEvent.objects.filter(entity=world["trainer"].entity).first(),
    }[model]()


@pytest.fixture
def world(rows, trainer, tenant_admin, superadmin):
    return {"rows": rows, "trainer": trainer, "tenant_admin": tenant_admin}


def test_every_accounts_model_is_registered():
    registered = {m for m in admin.site._registry if m._meta.app_label == "accounts"}
    assert registered == set(MODELS)
    assert admin.site.site_header == "SNW console"


# =============================================================================
# Smoke: changelist, search, add, change
# =============================================================================
@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_smoke_as_super_admin(world, superadmin, model):
    client = logged_in(superadmin)
    assert client.get(url(model, "changelist")).status_code == 200
    assert client.get(url(model, "changelist"), {"q": "a"}).status_code == 200
    add = client.get(url(model, "add"))
    assert add.status_code == (403 if model is AuditEvent else 200)
    obj = sample(model, world)
    assert client.get(url(model, "change", obj.pk)).status_code == 200


@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda m: m.__name__)
def test_smoke_as_entity_admin(world, tenant_admin, model):
    client = logged_in(tenant_admin)
    page = client.get(url(model, "changelist"))
    assert page.status_code == 200
    assert client.get(url(model, "changelist"), {"q": "a"}).status_code == 200
    assert client.get(url(model, "add")).status_code == (403 if model is AuditEvent else 200)
    response = client.get(url(model, "change", sample(model, world).pk))
    assert response.status_code == 200
    for html in (page.content.decode(), response.content.decode()):
        leaked = [m for m in B_MARKERS if m in html]
        assert not leaked, f"{model.__name__} page shows {leaked}"


def test_entity_admin_has_no_entity_pages(world, tenant_admin):
    client = logged_in(tenant_admin)
    assert client.get(url(Entity, "changelist")).status_code == 403
    assert client.get(url(Entity, "change", tenant_admin.entity.pk)).status_code == 403
    assert "Entities" not in client.get(reverse("admin:index")).content.decode()


# =============================================================================
# Cross-tenant negatives
# =============================================================================
@pytest.mark.parametrize(
    "get_obj",
    [
        lambda w, o: o,
        lambda w, o: w["rows"]["group_b"],
        lambda w, o: role(o.entity, "trainer"),
        lambda w, o: w["rows"]["share_b"],
        lambda w, o: AuditEvent.objects.filter(entity=o.entity).first(),
    ],
    ids=["user", "group", "role", "share", "audit"],
)
def test_other_entity_change_page_is_not_found(world, tenant_admin, other_user, get_obj):
    obj = get_obj(world, other_user)
    client = logged_in(tenant_admin)
    response = client.get(url(type(obj), "change", obj.pk), follow=True)
    # Django's "does not exist" redirect to the index, the same as for a missing id.
    assert response.redirect_chain and response.redirect_chain[-1][0] == reverse("admin:index")
    html = response.content.decode()
    assert "doesn\u2019t exist" in html or "doesn't exist" in html
    assert not [m for m in B_MARKERS if m in html]
    assert client.get(url(type(obj), "delete", obj.pk)).status_code in (302, 403)


def _option_values(html: str, name: str) -> set[str]:
    select = re.search(rf'name="{name}"[^>]*>(.*?)</select>', html, re.S)
    if select:
        return set(re.findall(r'value="([^"]*)"', select.group(1))) - {""}
    return set(re.findall(rf'name="{name}" value="([^"]*)"', html))


def test_add_user_choices_are_scoped_and_grantable(world, tenant_admin, other_admin, superadmin):
    html = logged_in(tenant_admin).get(url(User, "add")).content.decode()
    assert _option_values(html, "entity") == {str(tenant_admin.entity.pk)}
    roles = Role.objects.filter(pk__in=_option_values(html, "roles"))
    assert {r.entity.entity_code for r in roles} == {"AA"}
    assert {r.name for r in roles} == {"user", "trainer", "lingadmin"}
    groups = Group.objects.filter(pk__in=_option_values(html, "groups"))
    assert {g.name for g in groups} == {"team-a"}
    assert not [m for m in B_MARKERS if m in html]
    # The filters of the changelist name only A.
    changelist = logged_in(tenant_admin).get(url(User, "changelist")).content.decode()
    assert (
        "Tenant A" in changelist
        and "Tenant B" not in changelist
        and "Super entity" not in changelist
    )


def test_posting_another_entitys_ids_is_refused(world, tenant_admin, other_admin):
    b = other_admin.entity
    response = logged_in(tenant_admin).post(
        url(User, "add"),
        {
            "entity": b.pk,
            "user_code": "NEW",
            "roles": [role(b, "trainer").pk],
            "groups": [world["rows"]["group_b"].pk],
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"entity", "roles", "groups"}
    assert not [m for m in B_MARKERS if m in response.content.decode()]
    assert not User.objects.filter(user_code="NEW").exists()


def test_entity_admin_creates_user_in_group_through_services(world, tenant_admin):
    a = tenant_admin.entity
    client = logged_in(tenant_admin)
    response = client.post(
        url(User, "add"),
        {
            "entity": a.pk,
            "user_code": "NEW",
            "first_name": "Nina",
            "password1": "a-long-pass-42",
            "password2": "a-long-pass-42",
            "groups": [world["rows"]["group_a"].pk],
            "roles": [role(a, "user").pk],
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    user = User.objects.get(trainer_id="AANEW")
    assert user.check_password("a-long-pass-42")
    assert list(user.groups.all()) == [world["rows"]["group_a"]]
    actions = set(AuditEvent.objects.filter(actor=tenant_admin).values_list("action", flat=True))
    assert {"user.create", "group.add_member", "role.assign"} <= actions
    # And the audit trail shows it in the console.
    audit = client.get(url(AuditEvent, "changelist")).content.decode()
    assert "user.create" in audit and "AANEW" in audit


def test_password_form_goes_through_the_service(world, tenant_admin, trainer):
    client = logged_in(tenant_admin)
    path = reverse("admin:accounts_user_password_change", args=[trainer.pk])
    assert client.get(path).status_code == 200
    response = client.post(
        path,
        {
            "password1": "brand-new-pass-7",
            "password2": "brand-new-pass-7",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302
    trainer.refresh_from_db()
    assert trainer.check_password("brand-new-pass-7")
    assert AuditEvent.objects.filter(action="user.set_password", actor=tenant_admin).exists()


def test_password_form_of_another_entity_is_not_found(world, tenant_admin, other_user):
    path = reverse("admin:accounts_user_password_change", args=[other_user.pk])
    assert logged_in(tenant_admin).get(path).status_code == 302


def test_role_form_offers_only_grants_one_may_give(world, tenant_admin):
    html = logged_in(tenant_admin).get(url(Role, "add")).content.decode()
    grants = _option_values(html, "grants")
    assert "train@AA" in grants and "admin_user@AA" in grants
    assert "edit_config@AA" not in grants and "admin@SA" not in grants
    assert not [g for g in grants if not g.endswith("@AA")]
    response = logged_in(tenant_admin).post(
        url(Role, "add"),
        {"entity": tenant_admin.entity.pk, "name": "pools", "grants": ["edit_config@AA"]},
    )
    assert response.status_code == 200 and "grants" in response.context["adminform"].form.errors
    response = logged_in(tenant_admin).post(
        url(Role, "add"),
        {"entity": tenant_admin.entity.pk, "name": "readers", "grants": ["user@AA"]},
    )
    assert response.status_code == 302
    assert [g.permission.code for g in Role.objects.get(name="readers").grants.all()] == ["user"]


def test_group_and_share_and_delete_through_services(world, tenant_admin):
    a = tenant_admin.entity
    client = logged_in(tenant_admin)
    response = client.post(
        url(Group, "add"),
        {
            "entity": a.pk,
            "name": "trainers",
            "description": "",
            "roles": [role(a, "trainer").pk],
            "members": [world["trainer"].pk],
        },
    )
    assert response.status_code == 302
    group = Group.objects.get(name="trainers")
    assert list(group.members.all()) == [world["trainer"]]
    response = client.post(
        url(ShareRole, "add"), {"role": role(a, "trainer").pk, "entity_code": "zz"}
    )
    assert (
        response.status_code == 200 and "entity_code" in response.context["adminform"].form.errors
    )
    response = client.post(url(Group, "delete", group.pk), {"post": "yes"})
    assert response.status_code == 302 and not Group.objects.filter(pk=group.pk).exists()
    assert AuditEvent.objects.filter(action="group.delete", actor=tenant_admin).exists()


def test_refused_change_is_reported_and_rolled_back(world, tenant_admin):
    """Deactivating the last administrator of A is refused by the service: message, no change."""
    client = logged_in(tenant_admin)
    change = url(User, "change", tenant_admin.pk)
    data = {
        "first_name": "Changed",
        "last_name": "",
        "email": "",
        "roles": [role(tenant_admin.entity, "lingadmin").pk],
    }
    response = client.post(change, data, follow=True)
    assert "without an administrator" in response.content.decode()
    tenant_admin.refresh_from_db()
    assert tenant_admin.is_active and tenant_admin.first_name != "Changed"


def test_super_admin_manages_entities(world, superadmin):
    client = logged_in(superadmin)
    response = client.post(
        url(Entity, "add"), {"entity_code": "CC", "name": "Charlie", "description": ""}
    )
    assert response.status_code == 302
    assert Role.objects.filter(entity__entity_code="CC", name="trainer").exists()
    assert AuditEvent.objects.filter(action="entity.create", actor=superadmin).exists()


# =============================================================================
# Who may enter
# =============================================================================
def test_trainer_sees_only_pools_and_tasks(world, trainer):
    client = logged_in(trainer)
    index = client.get(reverse("admin:index")).content.decode()
    assert "Pools" in index and "Tasks" in index and "Users" not in index
    assert client.get(url(User, "changelist")).status_code == 403


def test_login_with_trainer_id_and_password(world, tenant_admin, other_tenant):
    from django.test import Client

    from tests.factories import UserFactory

    client = Client()
    page = client.get(reverse("admin:login")).content.decode()
    assert "Trainer id" in page and "SNW" in page
    response = client.post(
        reverse("admin:login"), {"username": "AAADM", "password": "secret-password"}
    )
    assert response.status_code == 302
    nobody = UserFactory(entity=other_tenant, user_code="NOP")
    response = Client().post(
        reverse("admin:login"), {"username": nobody.trainer_id, "password": "secret-password"}
    )
    assert response.status_code == 200  # no ability: refused like a wrong password


def test_empty_states_explain(world, superadmin):
    ShareRole.objects.all().delete()
    html = logged_in(superadmin).get(url(ShareRole, "changelist")).content.decode()
    assert "No shared roles" in html


def test_own_password_change_is_audited(world, trainer):
    client = logged_in(trainer)
    response = client.post(
        reverse("admin:password_change"),
        {
            "old_password": "secret-password",
            "new_password1": "fresh-pass-991",
            "new_password2": "fresh-pass-991",
        },
    )
    assert response.status_code == 302
    trainer.refresh_from_db()
    assert trainer.check_password("fresh-pass-991")
    assert AuditEvent.objects.filter(action="user.set_password", actor=trainer).exists()
