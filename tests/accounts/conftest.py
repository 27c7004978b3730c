"""Personas of the accounts tests: the super entity with its administrator, a tenant with an
administrator and a trainer, and a second tenant that must never leak into the first."""

import pytest
from django.conf import settings

from accounts import services
from accounts.models import Entity, Role
from tests.factories import EntityFactory, UserFactory


def role(entity: Entity, name: str) -> Role:
    return Role.objects.get(entity=entity, name=name)


@pytest.fixture
def sa(db) -> Entity:
    return services.entity_create(
        actor=None, entity_code=settings.SNW_SUPER_ENTITY, name="Super entity"
    )


@pytest.fixture
def superadmin(sa):
    return UserFactory(entity=sa, user_code="ADM", roles=["admin"])


@pytest.fixture
def tenant(db) -> Entity:
    return EntityFactory(entity_code="AA", name="Tenant A")


@pytest.fixture
def other_tenant(db) -> Entity:
    return EntityFactory(entity_code="BB", name="Tenant B")


@pytest.fixture
def tenant_admin(tenant):
    return UserFactory(entity=tenant, user_code="ADM", roles=["lingadmin"])


@pytest.fixture
def trainer(tenant):
    return UserFactory(entity=tenant, user_code="TRN", roles=["trainer"])


@pytest.fixture
def other_admin(other_tenant):
    return UserFactory(entity=other_tenant, user_code="ADM", roles=["lingadmin"])


@pytest.fixture
def other_user(other_tenant):
    return UserFactory(entity=other_tenant, user_code="USR", roles=["trainer"])
