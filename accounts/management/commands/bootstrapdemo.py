"""``manage.py bootstrapdemo``: what the one-command run needs, created once, repaired after.

Ensures the super entity with an administrator ``<SA>ADM`` holding ``admin``, and the demo
entity ``DM`` with a trainer ``DMTRN``. Passwords come from ``SNW_ADMIN_PASSWORD`` and
``SNW_DEMO_PASSWORD``, or are generated and printed once -- only when the user is created.
Safe to run at every start.
"""

import os
import secrets

from django.conf import settings
from django.db import transaction

from accounts import services
from accounts.management.base import AccountsCommand
from accounts.models import Entity, Role, User

__all__ = ["Command"]

DEMO_ENTITY = "DM"


class Command(AccountsCommand):
    help = "Ensure the super entity and its administrator, and a demo entity with a trainer."

    def run(self, **options):
        with transaction.atomic():
            sa = self._entity(settings.SNW_SUPER_ENTITY, "Super entity")
            dm = self._entity(DEMO_ENTITY, "Demo entity")
            self._user(sa, "ADM", "admin", "SNW_ADMIN_PASSWORD", "Administrator")
            self._user(dm, "TRN", "trainer", "SNW_DEMO_PASSWORD", "Demo trainer")

    def _entity(self, code: str, name: str) -> Entity:
        entity = Entity.objects.filter(entity_code=code).first()
        if entity is not None:
            self.step(f"entity {code} exists", level=2)
            return entity
        entity = services.entity_create(actor=None, entity_code=code, name=name)
        self.success(f"created entity {code} ({name})")
        return entity

    def _user(self, entity: Entity, user_code: str, role_name: str, env_var: str, name: str):
        role = Role.objects.get(entity=entity, name=role_name)
        user = User.objects.filter(entity=entity, user_code=user_code).first()
        if user is None:
            password = os.environ.get(env_var) or secrets.token_urlsafe(12)
            user = self.create_user(entity, user_code, name=name, password=password, roles=[role])
            shown = "from " + env_var if os.environ.get(env_var) else password
            self.success(f"created user {user.trainer_id} ({role_name}), password: {shown}")
            return
        if not user.roles.filter(pk=role.pk).exists():
            services.role_assign(actor=None, role=role, user=user)
            self.success(f"gave role {role} back to {user.trainer_id}")
        if not user.is_active:
            services.user_deactivate(actor=None, user=user, is_active=True)
            self.success(f"reactivated {user.trainer_id}")
        self.step(f"user {user.trainer_id} exists", level=2)
