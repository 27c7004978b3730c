"""Related fields whose choices are the policy's scope for the requesting user.

An id or code outside the scope gets the same "does not exist" error as a missing one, so a
request naming another entity's objects learns nothing about them.
"""

from collections.abc import Callable

from django.db.models import Model, QuerySet
from rest_framework import serializers

from accounts import policy
from accounts.constants import Action

__all__ = [
    "ScopedPrimaryKeyField",
    "ScopedSlugField",
    "administered_entities",
    "changeable_groups",
    "changeable_roles",
    "changeable_users",
]

Scope = Callable[[object], QuerySet]


def administered_entities(user) -> QuerySet:
    return policy.administered_entities(user)


def changeable_roles(user) -> QuerySet:
    return policy.roles_for(user, Action.CHANGE)


def changeable_groups(user) -> QuerySet:
    return policy.groups_for(user, Action.CHANGE)


def changeable_users(user) -> QuerySet:
    return policy.users_for(user, Action.CHANGE)


class _Scoped:
    """Mixin: ``queryset`` is only a type hint (for the schema); choices come from ``scope``."""

    def __init__(self, model: type[Model], scope: Scope, **kwargs):
        self.scope = scope
        super().__init__(queryset=model.objects.none(), **kwargs)

    def get_queryset(self):
        return self.scope(self.context["request"].user)


class ScopedPrimaryKeyField(_Scoped, serializers.PrimaryKeyRelatedField):
    pass


class ScopedSlugField(_Scoped, serializers.SlugRelatedField):
    pass
