"""Console pages of the accounts models. What each administrator sees is the policy's scope;
every change goes through ``accounts.services`` (and so is audited)."""

import json

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, OuterRef
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts import policy, services
from accounts.admin.base import ScopedAdmin, entity_filter
from accounts.admin.forms import (
    EntityForm,
    GroupForm,
    RoleForm,
    ShareRoleForm,
    UserAddForm,
    UserChangeForm,
)
from accounts.models import AuditEvent, Entity, Group, Role, ShareRole, User
from accounts.services import AccountsError

__all__ = [
    "AuditEventAdmin",
    "EntityAdmin",
    "GroupAdmin",
    "RoleAdmin",
    "ShareRoleAdmin",
    "UserAdmin",
]


class _ActorFormAdmin(ScopedAdmin):
    """Hands the acting user to the (``ActorForm``) form class built for this request."""

    add_form = None

    def get_form(self, request, obj=None, **kwargs):
        if obj is None and self.add_form is not None:
            kwargs["form"] = self.add_form
        form = super().get_form(request, obj, **kwargs)
        form.actor = request.user  # a fresh class per request (modelform_factory)
        return form

    def get_fields(self, request, obj=None):
        return _entity_as_text(super().get_fields(request, obj), obj)

    def get_readonly_fields(self, request, obj=None):
        return _entity_as_text(self.change_readonly, obj) if obj is not None else ()

    change_readonly: tuple[str, ...] = ()

    @admin.display(description="Entity")
    def entity_label(self, obj):
        return str(obj.entity)


def _entity_as_text(fields, obj) -> tuple[str, ...]:
    """On an existing row the entity never changes: shown as text, not as a link to the
    entity's page (which only holders of admin_entity may open)."""
    if obj is None:
        return tuple(fields)
    return tuple("entity_label" if name == "entity" else name for name in fields)


class _NamedAdmin(_ActorFormAdmin):
    """Groups and roles: entity, name and description through the ``create``/``update``/
    ``delete`` services, then the relations (``save_relations``)."""

    create = update = delete = None
    kind = ""

    def save_model(self, request, obj, form, change):
        data, actor = form.cleaned_data, request.user
        names = {"name": data["name"], "description": data["description"]}
        if change:
            saved = self.update(actor=actor, **{self.kind: obj}, **names)
        else:
            saved = self.create(actor=actor, entity=data["entity"], **names)
            obj.pk = saved.pk
        self.save_relations(actor, saved, form)

    def save_relations(self, actor, obj, form):
        raise NotImplementedError

    def delete_model(self, request, obj):
        self.delete(actor=request.user, **{self.kind: obj})


def _names(objects) -> str:
    return ", ".join(sorted(o.name for o in objects)) or "—"


# =============================================================================
# Users
# =============================================================================
@admin.register(User)
class UserAdmin(_ActorFormAdmin):
    scope = staticmethod(policy.users_for)
    form = UserChangeForm
    add_form = UserAddForm
    list_display = ("trainer_id", "full_name", "entity", "email", "is_active", "role_list")
    list_display_links = ("trainer_id",)
    list_filter = ("is_active", entity_filter())
    search_fields = ("trainer_id", "first_name", "last_name", "email")
    ordering = ("trainer_id",)
    change_readonly = ("trainer_id", "entity", "date_joined", "password_link")
    empty_message = (
        "No users yet: use “Add user” to create one (they log in with their trainer id)."
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("roles")

    def get_fields(self, request, obj=None):
        if obj is None:
            return super().get_fields(request, obj)
        return (
            "trainer_id",
            "entity_label",
            "first_name",
            "last_name",
            "email",
            "is_active",
            "password_link",
            "roles",
            "groups",
            "date_joined",
        )

    @admin.display(description="Roles")
    def role_list(self, obj):
        return _names(obj.roles.all())

    @admin.display(description="Password")
    def password_link(self, obj):
        url = reverse("admin:accounts_user_password_change", args=[obj.pk])
        state = "set" if obj.has_usable_password() else "not set (cannot log in)"
        return format_html('{} — <a href="{}">change the password</a>', state, url)

    def save_model(self, request, obj, form, change):
        data, actor = form.cleaned_data, request.user
        if not change:
            user = services.user_create(
                actor=actor,
                entity=data["entity"],
                user_code=data["user_code"],
                password=data.get("password1") or None,
                first_name=data.get("first_name", ""),
                last_name=data.get("last_name", ""),
                email=data.get("email", ""),
                roles=data.get("roles") or (),
                groups=data.get("groups") or (),
            )
            obj.pk, obj.trainer_id = user.pk, user.trainer_id
            return
        user = User.objects.get(pk=obj.pk)
        names = {k: data[k] for k in services.USER_EDITABLE if k in form.changed_data}
        if names:
            user = services.user_update(actor=actor, user=user, **names)
        if "is_active" in form.changed_data:
            user = services.user_deactivate(actor=actor, user=user, is_active=data["is_active"])
        services.user_set_roles(actor=actor, user=user, roles=data.get("roles") or ())
        services.user_set_groups(actor=actor, user=user, groups=data.get("groups") or ())

    def has_delete_permission(self, request, obj=None):
        return False  # users are deactivated, never deleted: their trainer id names tasks

    def get_urls(self):
        return [
            path(
                "<id>/password/",
                self.admin_site.admin_view(self.password_view),
                name="accounts_user_password_change",
            ),
            *super().get_urls(),
        ]

    def password_view(self, request, id):
        """Set a user's password through ``services.user_set_password``."""
        user = self.get_object(request, unquote(id))
        if user is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, id)
        if not self.has_change_permission(request, user):
            raise PermissionDenied
        form = AdminPasswordChangeForm(user, request.POST or None)
        if request.method == "POST" and form.is_valid():
            usable = form.cleaned_data.get("set_usable_password", True)
            try:
                services.user_set_password(
                    actor=request.user,
                    user=user,
                    password=form.cleaned_data["password1"] if usable else None,
                )
            except AccountsError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, f"Password of {user} changed.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:accounts_user_change", args=[user.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Change password: {user.trainer_id}",
            "adminForm": admin.helpers.AdminForm(
                form, [(None, {"fields": list(form.base_fields)})], {}
            ),
            "form_url": "",
            "form": form,
            "is_popup": False,
            "is_popup_var": "_popup",
            "add": True,
            "change": False,
            "has_delete_permission": False,
            "has_change_permission": True,
            "has_absolute_url": False,
            "opts": self.opts,
            "original": user,
            "save_as": False,
            "show_save": True,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/auth/user/change_password.html", context)


# =============================================================================
# Groups
# =============================================================================
@admin.register(Group)
class GroupAdmin(_NamedAdmin):
    scope = staticmethod(policy.groups_for)
    form = GroupForm
    list_display = ("name", "entity", "description", "member_count", "role_list")
    list_filter = (entity_filter(),)
    search_fields = ("name", "description", "members__trainer_id")
    ordering = ("entity__entity_code", "name")
    change_readonly = ("entity",)
    empty_message = "No groups yet: a group gives its roles to all its members — add one."

    def get_queryset(self, request):
        qs = super().get_queryset(request).prefetch_related("roles")
        return qs.annotate(member_total=Count("members", distinct=True))

    @admin.display(description="Members", ordering="member_total")
    def member_count(self, obj):
        return obj.member_total

    @admin.display(description="Roles")
    def role_list(self, obj):
        return _names(obj.roles.all())

    create = staticmethod(services.group_create)
    update = staticmethod(services.group_update)
    delete = staticmethod(services.group_delete)
    kind = "group"

    def save_relations(self, actor, group, form):
        data = form.cleaned_data
        services.group_set_members(actor=actor, group=group, members=data.get("members") or ())
        services.group_set_roles(actor=actor, group=group, roles=data.get("roles") or ())


# =============================================================================
# Roles
# =============================================================================
@admin.register(Role)
class RoleAdmin(_NamedAdmin):
    scope = staticmethod(policy.roles_for)
    form = RoleForm
    list_display = ("name", "entity", "description", "grant_list", "holder_count")
    list_filter = (entity_filter(),)
    search_fields = ("name", "description", "grants__permission__code")
    ordering = ("entity__entity_code", "name")
    change_readonly = ("entity",)
    empty_message = "No roles yet: a role is a set of permissions you give to users or groups."

    def get_queryset(self, request):
        qs = (
            super()
            .get_queryset(request)
            .prefetch_related("grants__permission", "grants__target_entity")
        )
        administered = policy.administered_entities(request.user)
        return qs.annotate(
            holder_total=Count("user_links", distinct=True),
            # a role shared from another entity: how many of its people hold it is theirs
            administered=Exists(administered.filter(pk=OuterRef("entity_id"))),
        ).distinct()

    @admin.display(description="Grants")
    def grant_list(self, obj):
        return (
            ", ".join(
                f"{g.permission.code}@{g.target_entity.entity_code}" for g in obj.grants.all()
            )
            or "—"
        )

    @admin.display(description="Users holding it", ordering="holder_total")
    def holder_count(self, obj):
        return obj.holder_total if obj.administered else "—"

    def get_fields(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):
            return ("entity_label", "name", "description", "grant_list")  # shared, read-only
        return super().get_fields(request, obj)

    create = staticmethod(services.role_create)
    update = staticmethod(services.role_update)
    delete = staticmethod(services.role_delete)
    kind = "role"

    def save_relations(self, actor, role, form):
        services.role_set_grants(actor=actor, role=role, grants=form.grant_pairs())


# =============================================================================
# Share roles
# =============================================================================
@admin.register(ShareRole)
class ShareRoleAdmin(_ActorFormAdmin):
    scope = staticmethod(policy.shares_for)
    form = ShareRoleForm
    # Who shared it is the sharing entity's business (its audit list says): both sides see these.
    list_display = ("role", "owner_entity", "entity", "created_at")
    list_filter = (entity_filter("owner_entity"), entity_filter())
    search_fields = ("role__name", "entity__entity_code", "owner_entity__entity_code")
    ordering = ("owner_entity__entity_code", "entity__entity_code")
    empty_message = (
        "No shared roles: share one of your roles with another entity so its administrators "
        "can give its permissions on your entity to their users."
    )

    def has_change_permission(self, request, obj=None):
        return False  # nothing to change: delete the share and create another

    def get_fields(self, request, obj=None):
        if obj is not None:  # view-only: what the share is, not the creation form
            return ("role", "shared_by", "shared_with", "created_at")
        return super().get_fields(request, obj)

    @admin.display(description="Shared by")
    def shared_by(self, obj):
        return str(obj.owner_entity)

    @admin.display(description="Shared with")
    def shared_with(self, obj):
        return str(obj.entity)

    def save_model(self, request, obj, form, change):
        share = services.share_role_create(
            actor=request.user,
            role=form.cleaned_data["role"],
            entity=form.cleaned_data["entity_code"],
        )
        obj.pk = share.pk
        obj.refresh_from_db()  # the admin's messages and log name the saved share

    def delete_model(self, request, obj):
        services.share_role_delete(actor=request.user, share=obj)


# =============================================================================
# Entities (holders of admin_entity only)
# =============================================================================
@admin.register(Entity)
class EntityAdmin(_ActorFormAdmin):
    scope = staticmethod(policy.entities_for)
    form = EntityForm
    list_display = ("entity_code", "name", "is_active", "user_total", "created_at")
    list_filter = ("is_active",)
    search_fields = ("entity_code", "name", "description")
    ordering = ("entity_code",)
    change_readonly = ("entity_code",)
    empty_message = "No entities yet: add the first organisation."

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(users_count=Count("users"))

    @admin.display(description="Users", ordering="users_count")
    def user_total(self, obj):
        return obj.users_count

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("entity_code", "name", "description")
        return ("entity_code", "name", "description", "is_active")

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            services.entity_update(
                actor=request.user,
                entity=obj,
                name=data["name"],
                description=data["description"],
                is_active=data["is_active"],
            )
        else:
            entity = services.entity_create(
                actor=request.user,
                entity_code=data["entity_code"],
                name=data["name"],
                description=data["description"],
            )
            obj.pk = entity.pk


# =============================================================================
# Audit trail (read-only)
# =============================================================================
@admin.register(AuditEvent)
class AuditEventAdmin(ScopedAdmin):
    scope = staticmethod(policy.audit_events_for)
    list_display = ("created_at", "actor_repr", "entity_code", "action", "object_repr")
    list_filter = ("action", entity_filter())
    search_fields = ("actor_repr", "action", "object_repr", "object_type")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    fields = (
        "created_at",
        "actor_repr",
        "entity_code",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "before_pretty",
        "after_pretty",
    )
    readonly_fields = fields
    empty_message = (
        "No changes recorded yet: every change made in the console or the API appears here."
    )

    @admin.display(description="Before")
    def before_pretty(self, obj):
        return _json(obj.before)

    @admin.display(description="After")
    def after_pretty(self, obj):
        return _json(obj.after)


def _json(value):
    if value is None:
        return "—"
    text = json.dumps(value, indent=2, sort_keys=True, default=str)
    return format_html("<pre>{}</pre>", text)
