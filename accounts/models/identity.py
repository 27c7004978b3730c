"""Identity of SNW: entities (organisations) and their users."""

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

__all__ = ["Entity", "User"]

entity_code_validator = RegexValidator(r"^[A-Z]{2}\Z", "Entity code must be exactly 2 upper-case letters.")
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
    def get_by_natural_key(self, trainer_id):
        return self.get(trainer_id=trainer_id)


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

    objects = UserManager()

    USERNAME_FIELD = "trainer_id"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["trainer_id"]
        constraints = [
            models.UniqueConstraint(fields=["entity", "user_code"], name="user_code_unique_in_entity"),
            models.CheckConstraint(
                condition=models.Q(user_code__regex=r"^[A-Za-z]{3}$"), name="user_code_three_letters"
            ),
        ]

    def save(self, *args, **kwargs):
        self.trainer_id = f"{self.entity.entity_code}{self.user_code}"
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return self.trainer_id
