from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from dispatch.queues import DEFAULT_QUEUE, queue_choices


class QueueField(models.CharField):
    """The name of a broker queue, one of the DTS_QUEUES setting (the admin offers them, and
    validation refuses any other).

    The choices are a setting, not schema: migrations record the field as a plain CharField, so
    they neither import app code nor change when the setting does."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 100)
        kwargs.setdefault("default", DEFAULT_QUEUE)
        super().__init__(choices=queue_choices, **kwargs)

    def deconstruct(self) -> tuple[str, str, Sequence[Any], dict[str, Any]]:
        name, _, args, kwargs = super().deconstruct()
        del kwargs["choices"]
        return name, "django.db.models.CharField", args, kwargs


class OverlapPolicy(models.TextChoices):
    """What a schedule does when it fires while the job's previous run is still active."""

    ALLOW = "allow", "Allow: run alongside"
    SKIP = "skip", "Skip this fire (recorded)"
    CANCEL_PREVIOUS = "cancel_previous", "Cancel the previous run, then run"


class Tag(models.Model):
    """A label jobs are filtered by (`nightly`, `billing`)."""

    name = models.CharField(
        max_length=50,
        unique=True,
        validators=[
            RegexValidator(
                r"^[a-z0-9][a-z0-9_.-]*$",
                "A tag is lower-case letters, digits, '_', '.' and '-', starting with a letter "
                "or digit.",
            )
        ],
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Job(models.Model):
    """What to run: a registered task type with its JSON arguments and how to execute it."""

    # Unique within its team only: a team's names say nothing about another team's jobs.
    name = models.CharField(max_length=200)
    # The team that owns the job: its members see it, and their roles say what they may do.
    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="jobs")
    tags = models.ManyToManyField(Tag, blank=True, related_name="jobs")
    description = models.TextField(blank=True)
    task_type = models.CharField(max_length=200, help_text="A registered task type, e.g. dts.echo.")
    args = models.JSONField(
        default=dict, blank=True, help_text="A JSON object, checked against the task type's schema."
    )
    queue = QueueField()
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
    priority = models.PositiveSmallIntegerField(
        default=5, help_text="0 (lowest) to 9 (highest): runs waiting in a queue start by priority."
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="At most this many runs of the job start per minute, over all workers.",
    )
    max_concurrent_runs = models.PositiveIntegerField(
        null=True, blank=True, help_text="At most this many runs of the job execute at once."
    )
    max_attempts = models.PositiveSmallIntegerField(
        default=1, help_text="Attempts in all, the first included; 1 means no retry."
    )
    retry_backoff_seconds = models.PositiveIntegerField(
        default=10, help_text="The wait before the second attempt; it doubles for each next one."
    )
    retry_backoff_max_seconds = models.PositiveIntegerField(
        default=3600, help_text="The longest wait between two attempts."
    )
    retry_jitter = models.BooleanField(
        default=True, help_text="Wait a random 50-100% of the backoff, so retries spread out."
    )
    idempotent = models.BooleanField(
        default=False,
        help_text="Safe to run again after its worker was lost mid-run: re-executed at once.",
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
            models.UniqueConstraint(
                fields=["team", "name"],
                name="job_name_unique_per_team",
                violation_error_message="Your team has a job of this name already.",
            ),
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
                condition=Q(priority__lte=9),
                name="job_priority_range",
                violation_error_message="The priority must be between 0 and 9.",
            ),
            models.CheckConstraint(
                condition=Q(rate_limit_per_minute__isnull=True) | Q(rate_limit_per_minute__gte=1),
                name="job_rate_limit_positive",
                violation_error_message="The rate limit must be at least 1 run per minute.",
            ),
            models.CheckConstraint(
                condition=Q(max_concurrent_runs__isnull=True) | Q(max_concurrent_runs__gte=1),
                name="job_max_concurrent_runs_positive",
                violation_error_message="The cap on concurrent runs must be at least 1.",
            ),
            models.CheckConstraint(
                condition=Q(max_attempts__gte=1, max_attempts__lte=100),
                name="job_max_attempts_range",
                violation_error_message="Max attempts must be between 1 and 100.",
            ),
            models.CheckConstraint(
                condition=Q(retry_backoff_seconds__gte=1)
                & Q(retry_backoff_max_seconds__gte=models.F("retry_backoff_seconds"))
                & Q(retry_backoff_max_seconds__lte=7 * 24 * 3600),
                name="job_retry_backoff_range",
                violation_error_message=(
                    "The retry backoff must be at least 1 second, and its cap at least the backoff "
                    "and at most 7 days."
                ),
            ),
            models.CheckConstraint(
                condition=Q(hard_timeout_seconds__isnull=True) | Q(hard_timeout_seconds__gte=1),
                name="job_hard_timeout_positive",
                violation_error_message="The hard timeout must be at least 1 second.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def retry_delay(self, *, failed_attempt: int, random_fraction: float) -> timedelta:
        """The wait after attempt `failed_attempt` failed: exponential, capped, optionally jittered
        to a `random_fraction` in [0, 1) of the upper half."""
        delay = min(
            self.retry_backoff_max_seconds,
            self.retry_backoff_seconds * 2 ** min(failed_attempt - 1, 32),
        )
        if self.retry_jitter:
            delay *= 0.5 + random_fraction / 2
        return timedelta(seconds=delay)

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
