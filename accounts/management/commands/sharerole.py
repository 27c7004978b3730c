"""``manage.py sharerole``: entity A shares one of its roles with entity B (or stops)."""

from django.core.management.base import CommandError

from accounts import services
from accounts.management.base import AccountsCommand
from accounts.models import ShareRole

__all__ = ["Command"]


class Command(AccountsCommand):
    help = (
        "Share ROLE of entity -e A with entity --with B, so B's administrators may build roles "
        "holding its permissions on A. --revoke stops sharing (abilities go at once)."
    )

    def add_arguments(self, parser):
        parser.add_argument("role", help="role name in the sharing entity")
        self.add_entity_arg(parser, required=True, help="the sharing entity A")
        parser.add_argument("--with", dest="receiver", required=True, help="receiving entity B")
        parser.add_argument("--revoke", action="store_true", help="stop sharing")
        self.add_if_missing_arg(parser)

    def run(self, *, role, entity, receiver, revoke, if_missing, **options):
        owner = self.get_entity(entity)
        the_role = self.get_role(owner, role)
        target = self.get_entity(receiver)
        share = ShareRole.objects.filter(role=the_role, entity=target).first()
        if revoke:
            if share is None:
                raise CommandError(f"{the_role} is not shared with {target.entity_code}")
            services.share_role_delete(actor=None, share=share)
            return self.success(f"{the_role} no longer shared with {target.entity_code}")
        if share is not None:
            return self.exists(f"share of {the_role} with {target.entity_code}", if_missing)
        services.share_role_create(actor=None, role=the_role, entity=target)
        self.success(f"shared {the_role} with {target.entity_code}")
