"""Notifications: a team's webhooks, what each is told of (a job's or a workflow's runs ending, a
job's health turning late or missed), and the log of every delivery with its attempts."""

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q

from apps.core import ids
from apps.jobs.models import Job
from apps.workflows.models import Workflow


class NotifyOn(models.TextChoices):
    FAILURE = "failure", "A run failed (failed, timed out or lost)"
    SUCCESS = "success", "A run succeeded"
    LATE = "late", "The job turned late (its health)"
    MISSED = "missed", "The job turned missed (its health)"


# What a workflow can notify on: late and missed are a job's schedules' health.
WORKFLOW_NOTIFY_ON = frozenset({NotifyOn.FAILURE, NotifyOn.SUCCESS})


class Webhook(models.Model):
    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="webhooks")
    name = models.CharField(max_length=200)
    url = models.CharField(max_length=2000)
    # The key each delivery is signed with (HMAC-SHA256): the receiver's copy checks it. Never
    # shown once set.
    secret = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "name"],
                name="webhook_name_unique_per_team",
                violation_error_message="Your team has a webhook of this name already.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class WebhookRule(models.Model):
    """The webhook is told when the job's or the workflow's runs end so, or the job's health
    turns so (`on`)."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="rules")
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.CASCADE, related_name="webhook_rules"
    )
    workflow = models.ForeignKey(
        Workflow, null=True, blank=True, on_delete=models.CASCADE, related_name="webhook_rules"
    )
    on = models.JSONField(help_text="Of failure, success, late, missed.")
    # The job's health as last noticed for this rule: late and missed are told when it turns so.
    health = models.CharField(max_length=10, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["webhook", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(job__isnull=False, workflow__isnull=True)
                | Q(job__isnull=True, workflow__isnull=False),
                name="webhook_rule_job_or_workflow",
            )
        ]

    def __str__(self) -> str:
        return f"{self.webhook}: {self.job or self.workflow} on {', '.join(self.on)}"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"  # to be tried at next_attempt_at
    DELIVERED = "delivered", "Delivered"  # the receiver answered 2xx
    FAILED = "failed", "Failed"  # given up: every attempt failed, or the address is refused


class Delivery(models.Model):
    """One notice to one webhook, and how its attempts went."""

    id = models.UUIDField(primary_key=True, default=ids.uuid4, editable=False)
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40)  # run.failed, workflow_run.succeeded, job.late, ping
    # What it tells of, once per webhook: "run:<id>:<finished_at>", "health:<rule>:<at>".
    key = models.CharField(max_length=200)
    payload = models.JSONField(encoder=DjangoJSONEncoder)
    state = models.CharField(
        max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    # Pending: when to try next (while a sender tries it: when its try is given up for lost).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["webhook", "key"], name="delivery_once_per_webhook")
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state="pending"),
                name="delivery_due_idx",
            ),
            models.Index(fields=["webhook", "-created_at"], name="delivery_webhook_idx"),
            models.Index(fields=["created_at"], name="delivery_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.webhook_id}: {self.state}"


# What the delivery log shows of each delivery (the API, the admin).
DELIVERY_LOG_FIELDS = (
    "event",
    "state",
    "attempts",
    "response_status",
    "error",
    "created_at",
    "last_attempt_at",
    "next_attempt_at",
    "delivered_at",
    "payload",
)


class NoticeCursor(models.Model):
    """How far the notifier has looked at ended runs (one row): the next look starts a little
    before it (apps.notifications.notices)."""

    name = models.CharField(max_length=20, primary_key=True)
    position = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name}: {self.position}"
