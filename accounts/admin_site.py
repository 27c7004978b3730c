"""The SNW console: a custom AdminSite, installed as Django's default site.

Entry needs an active user holding ``admin_user`` on some entity, ``admin``, or ``user`` /
``train`` (then only the pools and tasks pages show); ``accounts.policy.may_use_console``
decides. Login is by trainer id and password. ``snw_site.console`` mounts the pools and tasks
pages on it and installs it as the default site.
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
