"""The base of the accounts management commands (STYLE item 12).

Commands act as the system (``actor=None``: whoever runs ``manage.py`` owns the database), call
``accounts.services`` for every change, print steps gated on ``--verbosity``, and turn every
refusal into a ``CommandError`` (exit code 1) with the reason in plain words.
"""

import getpass
import os
import sys

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts import services
from accounts.cache import request_scope
from accounts.models import Entity, Group, Role, User
from accounts.models.identity import entity_code_validator
from accounts.services import AccountsError

__all__ = ["AccountsCommand"]


def _validation_message(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
    return " ".join(exc.messages)


class AccountsCommand(BaseCommand):
    """Subclasses implement ``run(**options)`` instead of ``handle``."""

    requires_migrations_checks = True

    # ----------------------------------------------------------------- arguments
    def add_entity_arg(self, parser, *, required: bool = False, help: str | None = None):
        parser.add_argument(
            "-e",
            "--entity",
            required=required,
            help=help or "entity code (2 upper-case letters)",
        )

    def add_if_missing_arg(self, parser):
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help='when it already exists, say so and succeed (default: report "exists", exit 1)',
        )

    # ----------------------------------------------------------------- running
    def handle(self, *args, **options):
        self.verbosity = options.get("verbosity", 1)
        try:
            with request_scope():
                return self.run(*args, **options)
        except AccountsError as exc:
            raise CommandError(str(exc)) from exc
        except ValidationError as exc:
            raise CommandError(_validation_message(exc)) from exc

    def run(self, *args, **options):  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self, message: str, *, level: int = 1) -> None:
        if self.verbosity >= level:
            self.stdout.write(message)

    def success(self, message: str) -> None:
        if self.verbosity >= 1:
            self.stdout.write(self.style.SUCCESS(message))

    def exists(self, message: str, if_missing: bool) -> None:
        """Re-running a creation: fine with ``--if-missing``, an error otherwise."""
        if not if_missing:
            raise CommandError(f"{message} exists (use --if-missing to accept that)")
        self.step(f"{message} exists")

    # ----------------------------------------------------------------- lookups
    def get_entity(self, code: str | None) -> Entity:
        if not code:
            raise CommandError("an entity is required (-e/--entity CODE)")
        try:
            entity_code_validator(code)
        except ValidationError:
            raise CommandError(
                f"bad entity code {code!r}: exactly 2 upper-case letters, e.g. AA"
            ) from None
        try:
            return Entity.objects.get(entity_code=code)
        except Entity.DoesNotExist:
            known = ", ".join(Entity.objects.values_list("entity_code", flat=True)) or "none"
            raise CommandError(f"unknown entity {code} (known: {known})") from None

    def split_trainer_id(self, trainer_id: str) -> tuple[Entity, str]:
        if len(trainer_id) != 5 or not trainer_id.isalpha() or not trainer_id.isascii():
            raise CommandError(
                f"bad trainer id {trainer_id!r}: entity code (2 upper-case letters) + user code "
                "(3 letters), e.g. AAJOE"
            )
        return self.get_entity(trainer_id[:2]), trainer_id[2:]

    def get_user(self, trainer_id: str) -> User:
        entity, _ = self.split_trainer_id(trainer_id)
        try:
            return User.objects.select_related("entity").get(trainer_id=trainer_id)
        except User.DoesNotExist:
            raise CommandError(f"unknown user {trainer_id} in {entity.entity_code}") from None

    def get_role(self, entity: Entity, name: str) -> Role:
        return self._get_named(Role, entity, name)

    def get_group(self, entity: Entity, name: str) -> Group:
        return self._get_named(Group, entity, name)

    def _get_named(self, model, entity: Entity, name: str):
        try:
            return model.objects.get(entity=entity, name=name)
        except model.DoesNotExist:
            siblings = model.objects.filter(entity=entity).values_list("name", flat=True)
            raise CommandError(
                f"unknown {model._meta.verbose_name} {name!r} in {entity.entity_code} "
                f"(known: {', '.join(siblings) or 'none'})"
            ) from None

    # ----------------------------------------------------------------- writes
    def create_user(self, entity: Entity, user_code: str, *, name: str = "", **fields) -> User:
        """``services.user_create`` as the system, with ``name`` split into first and last."""
        first, _, last = name.partition(" ")
        return services.user_create(
            actor=None,
            entity=entity,
            user_code=user_code,
            first_name=first,
            last_name=last,
            **fields,
        )

    # ----------------------------------------------------------------- passwords
    def read_password(self, *, stdin: bool, env_var: str, user: User | None = None) -> str:
        """From ``--password-stdin``, the environment, or an interactive prompt; never argv."""
        if stdin:
            password = sys.stdin.readline().rstrip("\r\n")
            source = "stdin"
        elif os.environ.get(env_var):
            password = os.environ[env_var]
            source = env_var
        elif sys.stdin.isatty():
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("the passwords do not match")
            source = "the prompt"
        else:
            raise CommandError(
                f"no password: use --password-stdin, set {env_var}, run in a terminal, "
                "or pass --no-password"
            )
        if not password:
            raise CommandError(f"empty password from {source}")
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise CommandError(
                f"password from {source} refused: {' '.join(exc.messages)}"
            ) from None
        return password
