"""Persistent API tokens (``_P_…``): named, revocable, stored only as a digest."""

from django.conf import settings
from django.db import models
from django.utils import timezone

__all__ = ["PersistentToken"]


class PersistentToken(models.Model):
    """A long-lived token for scripts; the secret is shown once and only its digest is kept."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="persistent_tokens"
    )
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "name"],
                condition=models.Q(revoked_at__isnull=True),
                name="persistent_token_name_unique_while_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.owner} / {self.name}"
