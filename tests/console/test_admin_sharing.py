"""Console: sharing roles, renaming into a taken name, and what the receiving entity sees."""

import pytest

from accounts.models import AuditEvent, Group, Role, ShareRole, User
from tests.console.conftest import logged_in, role
from tests.console.test_admin import url
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _errors(response) -> dict:
    assert response.status_code == 200, response.status_code
    return response.context["adminform"].form.errors


def test_an_entity_admin_shares_a_role_from_the_console(tenant_admin, other_tenant):
    trainer_role = role(tenant_admin.entity, "trainer")

    response = logged_in(tenant_admin).post(
        url(ShareRole, "add"), {"role": trainer_role.pk, "entity_code": "bb"}
    )

    assert response.status_code == 302, response.content[:2000]
    share = ShareRole.objects.get(role=trainer_role)
    assert share.entity == other_tenant and share.owner_entity == tenant_admin.entity
    assert AuditEvent.objects.filter(action="share_role.create", actor=tenant_admin).exists()


def test_sharing_with_ones_own_entity_is_a_field_error(tenant_admin):
    response = logged_in(tenant_admin).post(
        url(ShareRole, "add"),
        {"role": role(tenant_admin.entity, "trainer").pk, "entity_code": "aa"},
    )

    assert "entity_code" in _errors(response)
    assert not ShareRole.objects.exists()


@pytest.mark.parametrize("model", [Role, Group])
def test_renaming_into_a_taken_name_is_a_field_error(tenant_admin, model):
    entity = tenant_admin.entity
    if model is Role:
        obj = Role.objects.create(entity=entity, name="readers")
        data = {"entity": entity.pk, "name": "trainer", "description": ""}
    else:
        Group.objects.create(entity=entity, name="taken")
        obj = Group.objects.create(entity=entity, name="mine")
        data = {"entity": entity.pk, "name": "taken", "description": ""}

    response = logged_in(tenant_admin).post(url(model, "change", obj.pk), data)

    assert "name" in _errors(response)
    obj.refresh_from_db()
    assert obj.name in ("readers", "mine")


def test_the_receiving_entity_sees_a_shared_role_and_the_share_read_only(
    tenant_admin, trainer, other_admin
):
    trainer_role = role(tenant_admin.entity, "trainer")
    logged_in(tenant_admin).post(
        url(ShareRole, "add"), {"role": trainer_role.pk, "entity_code": "BB"}
    )
    share = ShareRole.objects.get(role=trainer_role)
    receiver = logged_in(other_admin)

    role_page = receiver.get(url(Role, "change", trainer_role.pk))
    share_page = receiver.get(url(ShareRole, "change", share.pk))

    assert role_page.status_code == 200 and "trainer" in role_page.content.decode()
    assert share_page.status_code == 200
    page = share_page.content.decode()
    assert "BB" in page and "None" not in page
    # How many of A's people hold A's role is A's business.
    listing = receiver.get(url(Role, "changelist")).content.decode()
    row = listing[listing.index("- AA/trainer") :].split("</tr>")[0]
    assert '<td class="field-holder_count">—</td>' in row
    shares = receiver.get(url(ShareRole, "changelist")).content.decode()
    assert "AATRN" not in role_page.content.decode() + listing
    assert "AAADM" not in page + shares  # who shared it is A's business
    assert "/admin/accounts/entity/" not in page + role_page.content.decode()  # no dead links


def test_changing_a_more_powerful_user_is_refused_with_a_message(sa, superadmin):
    sa_lingadmin = UserFactory(entity=sa, user_code="LNG", roles=["lingadmin"])
    client = logged_in(sa_lingadmin)

    page = client.get(url(User, "change", superadmin.pk))
    data = {"first_name": "Taken", "last_name": "", "email": "", "is_active": "on"}
    response = client.post(url(User, "change", superadmin.pk), data, follow=True)

    assert page.status_code == 200
    assert "SAADM holds admin" in response.content.decode()
    superadmin.refresh_from_db()
    assert superadmin.first_name != "Taken"


def test_a_user_code_taken_in_another_case_is_a_field_error(tenant_admin, trainer):
    data = {"entity": tenant_admin.entity.pk, "user_code": "trn", "first_name": "", "last_name": ""}

    response = logged_in(tenant_admin).post(url(User, "add"), data)

    assert _errors(response) == {"user_code": ["AATRN already exists."]}


@pytest.mark.parametrize("model", [User, Group, Role])
def test_add_forms_preselect_the_only_entity_one_administers(tenant_admin, model):
    form = logged_in(tenant_admin).get(url(model, "add")).context["adminform"].form

    assert form["entity"].value() == tenant_admin.entity.pk


def test_object_history_is_for_those_who_may_change_the_object(tenant_admin, other_admin):
    trainer_role = role(tenant_admin.entity, "trainer")
    logged_in(tenant_admin).post(
        url(ShareRole, "add"), {"role": trainer_role.pk, "entity_code": "BB"}
    )
    share = ShareRole.objects.get(role=trainer_role)
    receiver = logged_in(other_admin)

    assert receiver.get(url(ShareRole, "history", share.pk)).status_code == 403
    assert receiver.get(url(Role, "history", trainer_role.pk)).status_code == 403
    assert logged_in(tenant_admin).get(url(Role, "history", trainer_role.pk)).status_code == 200
