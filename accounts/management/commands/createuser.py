"""``manage.py createuser TRAINER_ID``: create a user, with roles and groups of its entity."""

from accounts.management.base import AccountsCommand
from accounts.models import User

__all__ = ["Command"]


class Command(AccountsCommand):
    help = (
        "Create a user. The password comes from --password-stdin, the SNW_PASSWORD environment "
        "variable or an interactive prompt; it is never a command-line argument."
    )

    def add_arguments(self, parser):
        parser.add_argument("trainer_id", help="entity code + user code, e.g. AAJOE")
        parser.add_argument("--name", default="", help='"First Last"')
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--role", action="append", default=[], help="role of the entity (repeatable)"
        )
        parser.add_argument(
            "--group", action="append", default=[], help="group of the entity (repeatable)"
        )
        source = parser.add_mutually_exclusive_group()
        source.add_argument(
            "--password-stdin", action="store_true", help="read the password from stdin"
        )
        source.add_argument(
            "--no-password", action="store_true", help="no usable password (tokens only)"
        )
        self.add_if_missing_arg(parser)

    def run(
        self,
        *,
        trainer_id,
        name,
        email,
        role,
        group,
        password_stdin,
        no_password,
        if_missing,
        **options,
    ):
        entity, user_code = self.split_trainer_id(trainer_id)
        if User.objects.filter(trainer_id=trainer_id).exists():
            return self.exists(f"user {trainer_id}", if_missing)
        roles = [self.get_role(entity, r) for r in role]
        groups = [self.get_group(entity, g) for g in group]
        password = None
        if not no_password:
            password = self.read_password(stdin=password_stdin, env_var="SNW_PASSWORD")
        user = self.create_user(
            entity,
            user_code,
            name=name,
            password=password,
            email=email,
            roles=roles,
            groups=groups,
        )
        extras = [f"roles {', '.join(role)}"] if role else []
        extras += [f"groups {', '.join(group)}"] if group else []
        self.success(
            f"created user {user.trainer_id}" + (f" ({'; '.join(extras)})" if extras else "")
        )
