"""Keep the ability cache honest: every change that can alter an ability invalidates it, and
m2m ``.add()``/``.set()`` (which bypass the link models' ``save()``) still refuse cross-entity
links. Connected in ``AccountsConfig.ready``."""

from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from accounts import cache
from accounts.models import (
    Entity,
    Group,
    GroupMembership,
    GroupRole,
    Permission,
    Role,
    RoleGrant,
    ShareRole,
    User,
    UserRole,
)
from accounts.models.roles import check_same_entity

__all__ = ["ABILITY_MODELS"]

#: Every model whose rows take part in resolving abilities.
ABILITY_MODELS = (
    Entity,
    User,
    Group,
    GroupMembership,
    GroupRole,
    Permission,
    Role,
    RoleGrant,
    ShareRole,
    UserRole,
)
#: Saving only these user fields cannot change an ability (logins must not flush the cache).
_USER_FIELDS_WITHOUT_EFFECT = frozenset({"last_login", "password"})


def _on_save(sender, instance, update_fields=None, **kwargs):
    if sender is User and update_fields and set(update_fields) <= _USER_FIELDS_WITHOUT_EFFECT:
        return
    cache.invalidate()


def _on_delete(sender, instance, **kwargs):
    cache.invalidate()


for _model in ABILITY_MODELS:
    post_save.connect(_on_save, sender=_model, dispatch_uid=f"abilities-save-{_model.__name__}")
    post_delete.connect(
        _on_delete, sender=_model, dispatch_uid=f"abilities-delete-{_model.__name__}"
    )

# through model -> (model of the m2m owner side, related model, message)
_LINKS = {
    GroupMembership: "A group only takes members of its own entity.",
    UserRole: "A user only holds roles of their own entity.",
    GroupRole: "A group only holds roles of its own entity.",
}


@receiver(m2m_changed, sender=GroupMembership, dispatch_uid="abilities-m2m-membership")
@receiver(m2m_changed, sender=UserRole, dispatch_uid="abilities-m2m-user-role")
@receiver(m2m_changed, sender=GroupRole, dispatch_uid="abilities-m2m-group-role")
def _on_m2m_changed(sender, instance, action, model, pk_set, **kwargs):
    if action == "pre_add" and pk_set:
        for other in model.objects.filter(pk__in=pk_set):
            check_same_entity(instance, other, _LINKS[sender], "entity")
    elif action in {"post_add", "post_remove", "post_clear"}:
        cache.invalidate()
