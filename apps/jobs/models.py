from django.conf import settings
from django.db import models
from django.db.models import Q

from workers.queues import Queue


class OverlapPolicy(models.TextChoices):
    """What a schedule does when it fires while the job's previous run is still active."""

    ALLOW = "allow", "Allow: run alongside"
    SKIP = "skip", "Skip this fire (recorded)"
    CANCEL_PREVIOUS = "cancel_previous", "Cancel the previous run, then run"


class Job(models.Model):
    """What to run: a registered task type with its JSON arguments and how to execute it."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    task_type = models.CharField(max_length=200, help_text="A registered task type, e.g. dts.echo.")
    args = models.JSONField(
        default=dict, blank=True, help_text="A JSON object, checked against the task type's schema."
    )
    queue = models.CharField(max_length=100, choices=Queue.choices, default=Queue.DEFAULT)
    soft_timeout_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="The task is told to stop after this long (default from settings).",
    )
    hard_timeout_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="The task's process is killed after this long (default from settings).",
    )
    overlap_policy = models.CharField(
        max_length=20, choices=OverlapPolicy.choices, default=OverlapPolicy.ALLOW
    )
    enabled = models.BooleanField(default=True, help_text="A disabled job's schedules do not fire.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(soft_timeout_seconds__isnull=True)
                | Q(hard_timeout_seconds__isnull=True)
                | Q(soft_timeout_seconds__lt=models.F("hard_timeout_seconds")),
                name="job_soft_timeout_below_hard_timeout",
                violation_error_message="The soft timeout must be shorter than the hard timeout.",
            ),
            models.CheckConstraint(
                condition=Q(soft_timeout_seconds__isnull=True) | Q(soft_timeout_seconds__gte=1),
                name="job_soft_timeout_positive",
                violation_error_message="The soft timeout must be at least 1 second.",
            ),
            models.CheckConstraint(
                condition=Q(hard_timeout_seconds__isnull=True) | Q(hard_timeout_seconds__gte=1),
                name="job_hard_timeout_positive",
                violation_error_message="The hard timeout must be at least 1 second.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def time_limits(self) -> tuple[int, int]:
        """The (soft, hard) limits in seconds that a run of this job gets.

        Celery arms the hard timer only once the soft one has fired, so soft must never exceed
        hard: a job that sets only a hard limit is told to stop at that limit and killed at once if
        it does not, and one that sets only a soft limit is killed the default grace later.
        """
        default_soft = settings.CELERY_TASK_SOFT_TIME_LIMIT
        default_hard = settings.CELERY_TASK_TIME_LIMIT
        soft = self.soft_timeout_seconds or default_soft
        hard = self.hard_timeout_seconds or default_hard
        if self.hard_timeout_seconds is None and soft >= hard:
            hard = soft + (default_hard - default_soft)
        return min(soft, hard), hard
