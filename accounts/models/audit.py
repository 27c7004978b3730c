"""The audit trail: one row per change of accounts, tokens and tasks (``audit_record``)."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models.identity import Entity

__all__ = ["AuditEvent"]


class AuditEvent(models.Model):
    """Who changed what, in which entity, from which values to which (shown by the console).

    ``actor_repr``/``entity_code``/``object_repr`` keep the story readable after the rows they
    point to are gone; ``actor`` is null for system changes (migrations, bootstrap commands).
    """

    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_repr = models.CharField("actor", max_length=64, default="system")
    entity = models.ForeignKey(
        Entity, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    entity_code = models.CharField("entity", max_length=2, blank=True)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField("object", max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["entity", "-created_at"], name="audit_entity_recent")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_repr} {self.action}"
