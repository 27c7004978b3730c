"""Forms of the console. Every choice is scoped by the policy for ``actor`` (set per request
by the admin's ``get_form``), so a choice out of scope is "not one of the available choices"."""

from django import forms
from django.contrib.auth import password_validation

from accounts import policy
from accounts.constants import Action
from accounts.models import Entity, Group, Role, ShareRole, User

__all__ = ["EntityForm", "GroupForm", "RoleForm", "ShareRoleForm", "UserAddForm", "UserChangeForm"]


def _multiple(label: str, help_text: str) -> forms.ModelMultipleChoiceField:
    return forms.ModelMultipleChoiceField(
        queryset=Role.objects.none(),
        required=False,
        label=label,
        help_text=help_text,
        widget=forms.CheckboxSelectMultiple,
    )


def assignable_role_choices(actor, entity: Entity | None, current=()):
    """Roles ``actor`` may give (plus those already held, to keep), of ``entity`` if known."""
    pks = {r.pk for r in policy.assignable_roles(actor)} | {r.pk for r in current}
    qs = Role.objects.filter(pk__in=pks).select_related("entity")
    return qs.filter(entity=entity) if entity is not None else qs


def joinable_group_choices(actor, entity: Entity | None, current=()):
    """Groups ``actor`` may add members to (all their roles assignable), plus current ones."""
    assignable = {r.pk for r in policy.assignable_roles(actor)}
    groups = policy.groups_for(actor, Action.CHANGE).prefetch_related("roles")
    pks = {g.pk for g in groups if all(r.pk in assignable for r in g.roles.all())}
    qs = Group.objects.filter(pk__in=pks | {g.pk for g in current}).select_related("entity")
    return qs.filter(entity=entity) if entity is not None else qs


class ActorForm(forms.ModelForm):
    """A model form that knows who is acting (``actor``, set on the class by the admin)."""

    actor = None

    def entity_of_instance(self) -> Entity | None:
        return self.instance.entity if self.instance.pk else None

    def check_unique_name(self, cleaned) -> None:
        """A name already taken in the entity is an error on the name (not a crash at save)."""
        entity = cleaned.get("entity") or self.entity_of_instance()
        name = cleaned.get("name")
        model = type(self.instance)
        if entity is not None and name:
            taken = model.objects.filter(entity=entity, name=name).exclude(pk=self.instance.pk)
            if taken.exists():
                kind = model._meta.verbose_name
                self.add_error("name", f"{entity.entity_code} already has a {kind} named {name}.")

    def check_entity(self, cleaned, names: tuple[str, ...]):
        """Related rows must belong to the chosen entity."""
        entity = cleaned.get("entity") or self.entity_of_instance()
        for name in names:
            for obj in cleaned.get(name) or ():
                if entity is not None and obj.entity_id != entity.pk:
                    self.add_error(name, f"{obj} is not of entity {entity.entity_code}.")


# =============================================================================
# Users
# =============================================================================
class _UserRelationsForm(ActorForm):
    roles = _multiple("Roles", "Roles held directly. Only roles you may give are offered.")
    groups = _multiple("Groups", "The user gets every role of their groups.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        user = self.instance if self.instance.pk else None
        entity = self.entity_of_instance()
        self.fields["roles"].queryset = assignable_role_choices(
            self.actor, entity, user.roles.all() if user else ()
        )
        self.fields["groups"].queryset = joinable_group_choices(
            self.actor, entity, user.groups.all() if user else ()
        )
        if user is not None:
            self.initial.setdefault("roles", list(user.roles.all()))
            self.initial.setdefault("groups", list(user.groups.all()))

    def clean(self):
        cleaned = super().clean()
        self.check_entity(cleaned, ("roles", "groups"))
        return cleaned


class UserAddForm(_UserRelationsForm):
    password1 = forms.CharField(
        label="Password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to create the user without a password (they cannot log in "
        "until one is set).",
    )
    password2 = forms.CharField(
        label="Password (again)",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    class Meta:
        model = User
        fields = ["entity", "user_code", "first_name", "last_name", "email"]
        help_texts = {"user_code": "3 letters; the trainer id is the entity code + this code."}

    def clean(self):
        cleaned = super().clean()
        entity, code = cleaned.get("entity"), cleaned.get("user_code")
        if entity is not None and code:
            taken = User.objects.filter(entity=entity, user_code__iexact=code).first()
            if taken is not None:
                self.add_error("user_code", f"{taken} already exists.")
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first != second:
            self.add_error("password2", "The two passwords differ.")
        elif first:
            try:
                password_validation.validate_password(first, self.instance)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


class UserChangeForm(_UserRelationsForm):
    class Meta:
        model = User
        fields = ["first_name", "last_name", "email", "is_active"]


# =============================================================================
# Groups, roles, shares, entities
# =============================================================================
class GroupForm(ActorForm):
    members = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )
    roles = _multiple("Roles", "Every member holds these roles.")

    class Meta:
        model = Group
        fields = ["entity", "name", "description"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        group = self.instance if self.instance.pk else None
        entity = self.entity_of_instance()
        members = policy.users_for(self.actor, Action.CHANGE)
        self.fields["members"].queryset = members.filter(entity=entity) if entity else members
        self.fields["roles"].queryset = assignable_role_choices(
            self.actor, entity, group.roles.all() if group else ()
        )
        if group is not None:
            self.initial.setdefault("members", list(group.members.all()))
            self.initial.setdefault("roles", list(group.roles.all()))

    def clean(self):
        cleaned = super().clean()
        self.check_unique_name(cleaned)
        self.check_entity(cleaned, ("members", "roles"))
        return cleaned


def _grant_key(permission: str, entity_code: str) -> str:
    return f"{permission}@{entity_code}"


class RoleForm(ActorForm):
    grants = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="permission@entity. Only grants you may hand out are offered; a grant on "
        "another entity needs that entity to share a role holding it with yours.",
    )

    class Meta:
        model = Role
        fields = ["entity", "name", "description"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = []
        if self.instance.pk:
            current = [
                _grant_key(g.permission.code, g.target_entity.entity_code)
                for g in self.instance.grants.select_related("permission", "target_entity")
            ]
            self.initial.setdefault("grants", current)
        keys = {_grant_key(p, e) for p, e in policy.grantable_pairs(self.actor)} | set(current)
        self.fields["grants"].choices = [(k, k) for k in sorted(keys)]
        self._current = set(current)

    def clean(self):
        cleaned = super().clean()
        self.check_unique_name(cleaned)
        entity = cleaned.get("entity") or self.entity_of_instance()
        if entity is None:
            return cleaned
        for key in set(cleaned.get("grants") or ()) - self._current:
            permission, _, target = key.partition("@")
            reason = policy.grant_refusal(self.actor, permission, target, entity.entity_code)
            if reason:
                self.add_error("grants", f"{key}: {reason}")
        return cleaned

    def grant_pairs(self) -> list[tuple[str, Entity]]:
        keys = [k.partition("@") for k in self.cleaned_data.get("grants") or ()]
        entities = Entity.objects.in_bulk([t for _, _, t in keys], field_name="entity_code")
        return [(p, entities[t]) for p, _, t in keys]


class ShareRoleForm(ActorForm):
    entity_code = forms.CharField(
        label="Share with entity",
        max_length=2,
        help_text="Code of the entity receiving the role (2 letters). Its administrators may "
        "then build roles holding this role's permissions on your entity.",
    )

    class Meta:
        model = ShareRole
        fields = ["role"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "role" in self.fields:  # absent from view-only pages
            self.fields["role"].queryset = assignable_role_choices(self.actor, None)

    def clean_entity_code(self):
        code = self.cleaned_data["entity_code"].upper()
        entity = Entity.objects.filter(entity_code=code).first()
        if entity is None:
            raise forms.ValidationError(f"Unknown entity {code}.")
        return entity

    def clean(self):
        cleaned = super().clean()
        role, entity = cleaned.get("role"), cleaned.get("entity_code")
        if role is not None and entity is not None:
            if entity.pk == role.entity_id:
                self.add_error("entity_code", "A role is shared with another entity.")
            elif ShareRole.objects.filter(role=role, entity=entity).exists():
                self.add_error(
                    "entity_code", f"{role} is already shared with {entity.entity_code}."
                )
        return cleaned


class EntityForm(ActorForm):
    class Meta:
        model = Entity
        fields = ["entity_code", "name", "description", "is_active"]
