from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class AuditAction(models.TextChoices):
    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    DELETE = "delete", "Delete"
    TRIGGER = "trigger", "Trigger"
    CANCEL = "cancel", "Cancel"
    RETRY = "retry", "Retry"
    PAUSE = "pause", "Pause"
    RESUME = "resume", "Resume"


class AuditEntry(models.Model):
    """Who did what to which object, when, with the fields it changed (old and new values).
    Written by the services in the transaction of the change (apps.audit.services)."""

    at = models.DateTimeField(auto_now_add=True)
    # Empty for changes nobody asked for in person (the scheduler, a management command).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_entries",
    )
    # The actor's name when it acted, kept after the user is deleted.
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=20, choices=AuditAction.choices)
    object_type = models.CharField(max_length=50)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    # The team that owns the object, by id (not a foreign key: the entry outlives the team).
    team_id = models.BigIntegerField(null=True, blank=True)
    changes = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["team_id", "-at"], name="audit_team_at_idx"),
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
        ]

    def __str__(self) -> str:
        actor = self.actor_name or "system"
        return f"{self.at:%Y-%m-%d %H:%M:%S} {actor} {self.action} {self.object_repr}"
