"""``manage.py grantrole``: give a role to a user or group, or a permission to a role."""

from django.core.management.base import CommandError

from accounts import services
from accounts.management.base import AccountsCommand
from accounts.models import Role

__all__ = ["Command"]


class Command(AccountsCommand):
    help = (
        "Give ROLE of an entity to a user (--user) or a group (--group), or add a permission "
        "to it (--permission [--on ENTITY]); --revoke undoes. Examples: "
        "grantrole trainer --user AAJOE; grantrole -e AA ops --permission train --on BB --create"
    )

    def add_arguments(self, parser):
        parser.add_argument("role", help="role name")
        self.add_entity_arg(parser, help="entity of the role (default: the user's entity)")
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--user", help="trainer id of the user to give the role to")
        target.add_argument("--group", help="group of the entity to give the role to")
        target.add_argument("--permission", help="permission code to add to the role")
        parser.add_argument("--on", help="target entity of --permission (default: the role's)")
        parser.add_argument(
            "--create", action="store_true", help="with --permission: create the role if needed"
        )
        parser.add_argument("--revoke", action="store_true", help="take it back instead")

    def run(self, *, role, entity, user, group, permission, on, create, revoke, **options):
        holder = self.get_user(user) if user else None
        if entity is None and holder is not None:
            entity = holder.entity.entity_code
        owner = self.get_entity(entity)
        if on and not permission:
            raise CommandError("--on only goes with --permission")
        if permission and create and not revoke and not owner.roles.filter(name=role).exists():
            services.role_create(actor=None, entity=owner, name=role)
            self.step(f"created role {owner.entity_code}/{role}")
        the_role: Role = self.get_role(owner, role)

        if permission:
            target = self.get_entity(on) if on else owner
            change = services.role_revoke if revoke else services.role_grant
            change(actor=None, role=the_role, permission=permission, target_entity=target)
            what = f"{permission}@{target.entity_code}"
            done = f"revoked {what} from" if revoke else f"granted {what} to"
            return self.success(f"{done} role {the_role}")

        kwargs = {"user": holder} if holder else {"group": self.get_group(owner, group)}
        if revoke:
            services.role_unassign(actor=None, role=the_role, **kwargs)
            return self.success(f"took role {the_role} from {user or group}")
        services.role_assign(actor=None, role=the_role, **kwargs)
        self.success(f"gave role {the_role} to {user or group}")
