"""Personas of the console tests: those of the accounts tests (SA admin, tenant A with its
administrator and trainer, tenant B that must never leak into A's pages) plus a few rows."""

import pytest
from django.test import Client

from accounts import services
from tests.accounts.conftest import (  # noqa: F401 (fixtures)
    other_admin,
    other_tenant,
    other_user,
    role,
    sa,
    superadmin,
    tenant,
    tenant_admin,
    trainer,
)

# The task pages' personas and pools: those of the task API tests.
from tests.tasks_api.conftest import engine, make_task, pools, world  # noqa: F401


@pytest.fixture
def rows(superadmin, tenant_admin, trainer, other_admin, other_user):  # noqa: F811 (imported fixtures)
    """A group and a share in each tenant (B's share goes to SA, not to A)."""
    a, b = tenant_admin.entity, other_admin.entity
    group_a = services.group_create(actor=None, entity=a, name="team-a", description="A team")
    services.group_add_member(actor=None, group=group_a, user=trainer)
    group_b = services.group_create(actor=None, entity=b, name="bravo-team")
    share_a = services.share_role_create(actor=None, role=role(a, "user"), entity=superadmin.entity)
    share_b = services.share_role_create(actor=None, role=role(b, "user"), entity=superadmin.entity)
    services.user_update(actor=other_admin, user=other_user, first_name="Bravoname")
    return {"group_a": group_a, "group_b": group_b, "share_a": share_a, "share_b": share_b}


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client
