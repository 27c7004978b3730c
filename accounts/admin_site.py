"""The SNW console: a custom AdminSite, installed as Django's default site.

Entry needs an active user holding ``admin_user`` on some entity, ``admin``, or ``user`` /
``train`` (then only the pools and tasks pages show); ``accounts.policy.may_use_console``
decides. Login is by trainer id and password. Installed by ``accounts.admin_apps``.
"""

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm, AdminPasswordChangeForm
from django.contrib.auth.views import PasswordChangeView
from django.core.exceptions import ValidationError
from django.urls import reverse

__all__ = ["ConsoleAuthenticationForm", "ConsolePasswordChangeForm", "SNWAdminSite"]


class ConsoleAuthenticationForm(AdminAuthenticationForm):
    """Trainer id + password; refuses users the policy keeps out of the console."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "Trainer id"
        self.fields["username"].widget.attrs["placeholder"] = "e.g. AAJDO"

    def confirm_login_allowed(self, user):
        from accounts import policy

        if not policy.may_use_console(user):
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


class ConsolePasswordChangeForm(AdminPasswordChangeForm):
    """One's own password, changed through ``accounts.services`` (audited)."""

    def save(self, commit=True):
        from accounts import services

        return services.user_set_password(
            actor=self.user, user=self.user, password=self.cleaned_data["new_password1"]
        )


class SNWAdminSite(admin.AdminSite):
    site_header = "SNW console"
    site_title = "SNW"
    index_title = "Your organisation"
    site_url = None
    login_form = ConsoleAuthenticationForm

    def has_permission(self, request):
        from accounts import policy

        return policy.may_use_console(request.user)

    def password_change(self, request, extra_context=None):
        request.current_app = self.name
        return PasswordChangeView.as_view(
            form_class=ConsolePasswordChangeForm,
            success_url=reverse("admin:password_change_done", current_app=self.name),
            extra_context={**self.each_context(request), **(extra_context or {})},
        )(request)

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
