"""factory_boy factories shared by the test folders. Entities are created through
``accounts.services.entity_create`` so they carry their preset roles, like real ones."""

import itertools
import string

import factory
from django.conf import settings

from accounts import services
from accounts.models import Entity, Group, Role, User

__all__ = ["EntityFactory", "GroupFactory", "RoleFactory", "UserFactory", "entity_code_for"]

_RESERVED = {"DM"}
_CODES = [
    a + b
    for a, b in itertools.product(string.ascii_uppercase, repeat=2)
    if a + b not in _RESERVED and a + b != settings.SNW_SUPER_ENTITY
]
_USER_CODES = ["".join(t) for t in itertools.product(string.ascii_uppercase, repeat=3)]


def entity_code_for(n: int) -> str:
    """A fresh 2-letter code (never the super entity nor the demo entity)."""
    return _CODES[n % len(_CODES)]


class EntityFactory(factory.django.DjangoModelFactory):
    """An entity with its preset roles (user, trainer, lingadmin)."""

    class Meta:
        model = Entity

    entity_code = factory.Sequence(entity_code_for)
    name = factory.LazyAttribute(lambda o: f"Entity {o.entity_code}")
    description = ""

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return services.entity_create(actor=None, **kwargs)


class UserFactory(factory.django.DjangoModelFactory):
    """A user (password ``secret-password``) of a fresh entity unless one is given."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    entity = factory.SubFactory(EntityFactory)
    user_code = factory.Sequence(lambda n: _USER_CODES[n % len(_USER_CODES)])
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda o: f"{o.user_code.lower()}@example.com")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        kwargs.setdefault("password", "secret-password")
        return User.objects.create_user(**kwargs)

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        """``UserFactory(roles=["trainer"])``: preset role names of the user's entity."""
        for name in extracted or ():
            role = (
                name if isinstance(name, Role) else Role.objects.get(entity=self.entity, name=name)
            )
            services.role_assign(actor=None, role=role, user=self)


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Group

    entity = factory.SubFactory(EntityFactory)
    name = factory.Sequence(lambda n: f"group-{n}")


class RoleFactory(factory.django.DjangoModelFactory):
    """An empty role (add grants with ``services.role_grant``)."""

    class Meta:
        model = Role

    entity = factory.SubFactory(EntityFactory)
    name = factory.Sequence(lambda n: f"role-{n}")
