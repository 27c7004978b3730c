"""``django.contrib.admin`` with the SNW console as its default site (kept apart from
``snw_site.console``, which imports forms, so INSTALLED_APPS can load it early)."""

from django.contrib.admin.apps import AdminConfig

__all__ = ["SNWAdminConfig"]


class SNWAdminConfig(AdminConfig):
    """Replaces ``django.contrib.admin`` in INSTALLED_APPS."""

    default_site = "snw_site.console.ConsoleSite"
