"""Seed the 12 fixed permissions of the reference README (codes are stable API)."""

from django.db import migrations

# Frozen copy: a migration must not change meaning when accounts.constants evolves.
PERMISSIONS = [
    ("admin", "Super Admin"),
    ("admin_user", "Admin user"),
    ("user", "List models"),
    ("train", "Launch tasks"),
    ("terminate_self", "Terminate tasks from oneself"),
    ("terminate", "Terminate tasks from other users"),
    ("delete_model", "Delete models"),
    ("release_model", "Release models"),
    ("push_model", "Push models"),
    ("edit_config", "Manage pool configuration"),
    ("stop_config", "Stop a pool"),
    ("admin_entity", "Admin entity (only available for the super entity)"),
]


def seed(apps, schema_editor):
    Permission = apps.get_model("accounts", "Permission")
    for code, description in PERMISSIONS:
        Permission.objects.update_or_create(code=code, defaults={"description": description})


def unseed(apps, schema_editor):
    Permission = apps.get_model("accounts", "Permission")
    Permission.objects.filter(code__in=[code for code, _ in PERMISSIONS]).delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_roles_groups_shares_audit")]

    operations = [migrations.RunPython(seed, unseed)]
