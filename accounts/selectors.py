"""Read functions of the accounts app: every list and fetch goes through ``accounts.policy``.

``<model>_list(user=…)`` returns what ``user`` may see (or change, with ``action``);
``<model>_get(user=…, …)`` raises the model's ``DoesNotExist`` both when the row is missing
and when it is out of scope, so surfaces answer one 404 for both.
"""

from django.db.models import QuerySet

from accounts import policy
from accounts.constants import Action
from accounts.models import AuditEvent, Entity, Group, Role, ShareRole, User

__all__ = [
    "audit_event_list",
    "entity_get",
    "entity_list",
    "group_list",
    "role_list",
    "share_role_list",
    "user_abilities",
    "user_get",
    "user_list",
]


def _in_entity(qs: QuerySet, entity_code: str | None, field: str = "entity__entity_code"):
    return qs.filter(**{field: entity_code}) if entity_code else qs


def entity_list(*, user, action: Action = Action.VIEW) -> QuerySet[Entity]:
    return policy.entities_for(user, action)


def entity_get(*, user, entity_code: str, action: Action = Action.VIEW) -> Entity:
    return policy.entities_for(user, action).get(entity_code=entity_code)


def user_list(*, user, entity_code: str | None = None, action=Action.VIEW) -> QuerySet[User]:
    return _in_entity(policy.users_for(user, action), entity_code)


def user_get(*, user, trainer_id: str, action: Action = Action.VIEW) -> User:
    return policy.users_for(user, action).get(trainer_id=trainer_id)


def group_list(*, user, entity_code: str | None = None, action=Action.VIEW) -> QuerySet[Group]:
    return _in_entity(policy.groups_for(user, action), entity_code)


def role_list(*, user, entity_code: str | None = None, action=Action.VIEW) -> QuerySet[Role]:
    return _in_entity(policy.roles_for(user, action), entity_code).prefetch_related(
        "grants__permission", "grants__target_entity"
    )


def share_role_list(*, user, action: Action = Action.VIEW) -> QuerySet[ShareRole]:
    return policy.shares_for(user, action)


def audit_event_list(*, user, entity_code: str | None = None) -> QuerySet[AuditEvent]:
    return _in_entity(policy.audit_events_for(user), entity_code)


def user_abilities(*, user, target: User) -> list[tuple[str, str]]:
    """The abilities of ``target``, sorted, if ``user`` may see ``target`` (else DoesNotExist)."""
    if not policy.allows(user, Action.VIEW, target):
        raise User.DoesNotExist
    return sorted(policy.abilities(target))
