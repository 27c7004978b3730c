"""``manage.py abilities TRAINER_ID``: what a user may do, where (and why not, when empty)."""

import json

from accounts import policy
from accounts.management.base import AccountsCommand

__all__ = ["Command"]


class Command(AccountsCommand):
    help = "List the (permission, entity) abilities of a user, as the policy resolves them."

    def add_arguments(self, parser):
        parser.add_argument("trainer_id")
        parser.add_argument("--json", dest="as_json", action="store_true", help="print a JSON list")

    def run(self, *, trainer_id, as_json: bool = False, **options):
        user = self.get_user(trainer_id)
        rows = sorted(policy.compute_abilities(user), key=lambda a: (a[1], a[0]))
        if as_json:
            self.stdout.write(json.dumps([{"permission": p, "entity": e} for p, e in rows]))
            return
        if not rows:
            state = "" if user.is_active else " (user deactivated)"
            self.stdout.write(f"{trainer_id} has no ability{state}")
            return
        for perm, entity in rows:
            self.stdout.write(f"{entity}  {perm}")
