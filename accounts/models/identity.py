"""Identity of SNW: entities (organisations) and their users."""

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

__all__ = ["Entity", "User", "UserManager"]

entity_code_validator = RegexValidator(
    r"^[A-Z]{2}\Z", "Entity code must be exactly 2 upper-case letters."
)
user_code_validator = RegexValidator(r"^[A-Za-z]{3}\Z", "User code must be exactly 3 letters.")


class Entity(models.Model):
    """An organisation: owns users, groups, roles and pools. ``entity_code`` prefixes everything."""

    entity_code = models.CharField(max_length=2, unique=True, validators=[entity_code_validator])
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name_plural = "entities"
        ordering = ["entity_code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(entity_code__regex=r"^[A-Z]{2}$"), name="entity_code_two_upper"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.entity_code} — {self.name}"


class UserManager(BaseUserManager):
    """Creates users from (entity, user code); the login name ``trainer_id`` is derived."""

    use_in_migrations = True

    def get_by_natural_key(self, trainer_id):
        return self.get(trainer_id=trainer_id)

    def create_user(self, *, entity, user_code, password=None, **fields):
        """Validate and save a user; ``password=None`` gives an unusable password.

        This is the low-level constructor (no policy, no audit); surfaces call
        ``accounts.services.user_create`` instead.
        """
        user = self.model(entity=entity, user_code=user_code, **fields)
        user.email = self.normalize_email(user.email)
        user.set_password(password)
        user.full_clean()
        user.save(using=self._db)
        return user


class User(AbstractBaseUser):
    """A person of one entity; logs in with ``trainer_id`` = entity code + user code."""

    entity = models.ForeignKey(Entity, on_delete=models.PROTECT, related_name="users")
    user_code = models.CharField(max_length=3, validators=[user_code_validator])
    trainer_id = models.CharField(max_length=5, unique=True, editable=False)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    email = models.EmailField(blank=True)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now, editable=False)
    # Part of every temporary token's stamp (accounts.tokens.auth_stamp): raised when the user
    # or their entity is deactivated, so tokens issued before stay dead after a reactivation.
    token_epoch = models.PositiveIntegerField(default=0, editable=False)

    objects = UserManager()

    USERNAME_FIELD = "trainer_id"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["trainer_id"]
        constraints = [
            # ABjoe and ABJOE would be two logins a person cannot tell apart.
            models.UniqueConstraint(
                "entity",
                Lower("user_code"),
                name="user_code_unique_in_entity_ci",
                violation_error_message="This user code is taken in the entity (in any case).",
            ),
            models.CheckConstraint(
                condition=models.Q(user_code__regex=r"^[A-Za-z]{3}$"),
                name="user_code_three_letters",
            ),
            # The entity half cannot be checked across tables; the shape and the user half can.
            models.CheckConstraint(
                condition=models.Q(trainer_id__regex=r"^[A-Z]{2}[A-Za-z]{3}$")
                & models.Q(trainer_id__endswith=models.F("user_code")),
                name="trainer_id_is_entity_and_user_code",
            ),
        ]

    @property
    def entity_code(self) -> str:
        return self.entity.entity_code

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def derive_trainer_id(self) -> str:
        return f"{self.entity.entity_code}{self.user_code}"

    def clean(self):
        super().clean()
        if self.entity_id is not None and self.user_code:
            self.trainer_id = self.derive_trainer_id()

    def save(self, *args, **kwargs):
        self.trainer_id = self.derive_trainer_id()
        super().save(*args, **kwargs)

    # -- Django admin hooks (no PermissionsMixin): every answer comes from accounts.policy --
    @property
    def is_staff(self) -> bool:
        from accounts import policy

        return policy.may_use_console(self)

    @property
    def is_superuser(self) -> bool:
        from accounts import policy

        return policy.is_admin(self)

    def has_perm(self, perm: str, obj=None) -> bool:
        """``"accounts.change_role"``-style checks of the admin, answered by the policy."""
        from django.apps import apps

        from accounts import policy

        app_label, _, codename = perm.partition(".")
        action, _, model_name = codename.partition("_")
        try:
            model = apps.get_model(app_label, model_name)
        except LookupError:
            return False
        return policy.model_permission(self, model, action, obj)

    def has_perms(self, perm_list, obj=None) -> bool:
        return all(self.has_perm(perm, obj) for perm in perm_list)

    def has_module_perms(self, app_label: str) -> bool:
        from django.apps import apps

        from accounts import policy

        return any(
            policy.model_permission(self, model, "view")
            for model in apps.get_app_config(app_label).get_models()
        )

    def __str__(self) -> str:
        return self.trainer_id
