"""``manage.py createentity CODE NAME``: create an entity with its preset roles."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from accounts import services
from accounts.management.base import AccountsCommand
from accounts.models import Entity
from accounts.models.identity import entity_code_validator

__all__ = ["Command"]


class Command(AccountsCommand):
    help = "Create an entity (2-letter code) with its preset roles user, trainer, lingadmin."

    def add_arguments(self, parser):
        parser.add_argument("code", help="entity code, 2 upper-case letters")
        parser.add_argument("name", help="display name")
        parser.add_argument("--description", default="")
        parser.add_argument(
            "--super",
            action="store_true",
            help="this is the super entity (must equal the SUPER_ENTITY setting); it also "
            "gets the admin role",
        )
        self.add_if_missing_arg(parser)

    def run(self, *, code, name, description, super, if_missing, **options):
        try:
            entity_code_validator(code)
        except ValidationError:
            raise CommandError(f"bad entity code {code!r}: exactly 2 upper-case letters") from None
        if super and code != settings.SNW_SUPER_ENTITY:
            raise CommandError(
                f"--super: the super entity is {settings.SNW_SUPER_ENTITY} (setting "
                f"SUPER_ENTITY); set SUPER_ENTITY={code} to make {code} the super entity"
            )
        if Entity.objects.filter(entity_code=code).exists():
            return self.exists(f"entity {code}", if_missing)
        entity = services.entity_create(
            actor=None, entity_code=code, name=name, description=description
        )
        roles = ", ".join(entity.roles.values_list("name", flat=True))
        self.success(f"created entity {code} ({name}) with roles {roles}")
