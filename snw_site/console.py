"""The SNW console as deployed: the accounts site (``accounts.admin_site``) plus the pools and
tasks pages of ``tasks_api.console``. Composed here, in the project, so that neither app has to
know the other's pages. Installed as Django's default admin site by ``snw_site.admin_apps``.
"""

from django.urls import reverse

from accounts.admin_site import SNWAdminSite

__all__ = ["ConsoleSite"]


class ConsoleSite(SNWAdminSite):
    """The accounts console with the engine's pools and tasks pages mounted."""

    def get_urls(self):
        from tasks_api import console

        return console.urls(self) + super().get_urls()

    def get_app_list(self, request, app_label=None):
        """The model pages the user may open, then the pools and tasks pages (data from the
        engine, not models)."""
        apps = super().get_app_list(request, app_label)
        if app_label in (None, "console"):
            apps.append(
                {
                    "name": "Pools and tasks",
                    "app_label": "console",
                    "app_url": reverse("admin:console-tasks", current_app=self.name),
                    "has_module_perms": True,
                    "models": [
                        self._page("Tasks", "console-tasks"),
                        self._page("Pools", "console-pools"),
                    ],
                }
            )
        return apps

    def _page(self, name: str, url_name: str) -> dict:
        return {
            "name": name,
            "object_name": name.lower(),
            "admin_url": reverse(f"admin:{url_name}", current_app=self.name),
            "add_url": None,
            "view_only": True,
            "perms": {"add": False, "change": False, "delete": False, "view": True},
        }
