"""The one scoped ModelAdmin of the console: every page, choice and write goes through
``accounts.policy`` and ``accounts.services``.

* ``get_queryset``: the policy's view scope (rows out of scope are "not found");
* ``get_field_queryset``: every FK/M2M choice (hence form validation) is the policy's change
  scope of the related model;
* ``has_*_permission``: ``policy.model_permission`` (also what ``User.has_perm`` answers);
* FK list filters are ``RelatedOnlyFieldListFilter`` (only values of visible rows);
* saving and deleting call services; a refusal becomes an error message, the change is
  rolled back, and the form is shown again.
"""

from django.contrib import admin, messages
from django.contrib.admin import RelatedOnlyFieldListFilter
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseRedirect

from accounts import policy
from accounts.constants import Action
from accounts.models import Entity, Group, Role, User
from accounts.services import AccountsError

__all__ = ["ScopedAdmin", "entity_filter"]

#: The choices a form may offer for a relation to each model.
FIELD_SCOPES = {
    Entity: policy.administered_entities,
    User: lambda user: policy.users_for(user, Action.CHANGE),
    Group: lambda user: policy.groups_for(user, Action.CHANGE),
    Role: lambda user: policy.roles_for(user, Action.CHANGE),
}


def entity_filter(field: str = "entity"):
    return (field, RelatedOnlyFieldListFilter)


class ScopedAdmin(admin.ModelAdmin):
    """Base of every console ModelAdmin (see the module docstring)."""

    #: ``accounts.policy.<model>s_for``
    scope = None
    #: What to tell a user facing an empty list.
    empty_message = "Nothing here yet."
    list_per_page = 50

    # -- reads -------------------------------------------------------------------------
    def get_queryset(self, request):
        qs = self.scope(request.user, Action.VIEW)
        ordering = self.get_ordering(request)
        return qs.order_by(*ordering) if ordering else qs

    def get_field_queryset(self, db, db_field, request):
        scope = FIELD_SCOPES.get(db_field.remote_field.model)
        if scope is None:
            return super().get_field_queryset(db, db_field, request)
        return scope(request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "entity" and field is not None:
            only = list(field.queryset[:2])
            if len(only) == 1:  # an entity administrator has one entity: chosen already
                field.initial = only[0].pk
        return field

    def scoped_choices(self, request, model):
        return FIELD_SCOPES[model](request.user)

    # -- permissions: the policy ---------------------------------------------------------
    def _may(self, request, action, obj=None) -> bool:
        return policy.model_permission(request.user, self.model, action, obj)

    def has_module_permission(self, request):
        return self._may(request, "view")

    def has_view_permission(self, request, obj=None):
        return self._may(request, "view", obj)

    def has_add_permission(self, request):
        return self._may(request, "add")

    def has_change_permission(self, request, obj=None):
        return self._may(request, "change", obj)

    def has_delete_permission(self, request, obj=None):
        return self._may(request, "delete", obj)

    # -- writes: services ----------------------------------------------------------------
    def save_model(self, request, obj, form, change):
        raise NotImplementedError(f"{type(self).__name__} must save through accounts.services")

    def save_related(self, request, form, formsets, change):
        """Relations were saved by ``save_model`` through the services (never ``save_m2m``)."""

    def delete_model(self, request, obj):
        raise NotImplementedError(f"{type(self).__name__} must delete through accounts.services")

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    def history_view(self, request, object_id, extra_context=None):
        """Django's per-object history names who changed what: only for those who may change
        the object (anyone else may see a shared role, not who in the other entity shared it;
        the audit list is the record)."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_change_permission(request, obj):
            raise PermissionDenied
        return super().history_view(request, object_id, extra_context)

    def _refused(self, request, exc: AccountsError):
        self.message_user(request, f"Not saved: {exc.message}", messages.ERROR)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            with transaction.atomic():
                return super().changeform_view(request, object_id, form_url, extra_context)
        except AccountsError as exc:
            self._refused(request, exc)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(self, request, object_id, extra_context=None):
        try:
            with transaction.atomic():
                return super().delete_view(request, object_id, extra_context)
        except AccountsError as exc:
            self._refused(request, exc)
            return HttpResponseRedirect(request.get_full_path())

    def changelist_view(self, request, extra_context=None):
        extra_context = {"empty_message": self.empty_message, **(extra_context or {})}
        try:
            with transaction.atomic():
                return super().changelist_view(request, extra_context)
        except AccountsError as exc:  # bulk delete action
            self._refused(request, exc)
            return HttpResponseRedirect(request.get_full_path())
