from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.jobs.models import Job
from apps.schedules.timing import Recurrence, cron_describe, interval_describe


class ScheduleKind(models.TextChoices):
    CRON = "cron", "Cron"
    INTERVAL = "interval", "Interval"
    ONCE = "once", "Once at"


class MisfirePolicy(models.TextChoices):
    """What to do with fire times missed while no scheduler ran (or the job was disabled)."""

    SKIP = "skip", "Skip all missed fires"
    RUN_ONCE = "run_once", "Run once for the latest missed fire"
    CATCH_UP = "catch_up", "Catch up the missed fires within a window (bounded)"


class ScheduleTiming(models.Model):
    """When something fires, and what a fire missed while no scheduler ran becomes: a job's
    schedule (Schedule) and a workflow's (apps.workflows.models.WorkflowSchedule) are both this,
    read by the same planner and refused by the same checks (apps.schedules.validation)."""

    kind = models.CharField(max_length=10, choices=ScheduleKind.choices)
    cron_expression = models.CharField(
        max_length=200, blank=True, help_text="5 fields or an alias such as @hourly."
    )
    timezone = models.CharField(
        max_length=64, default="UTC", help_text="IANA name, e.g. Europe/Paris."
    )
    interval_seconds = models.PositiveIntegerField(null=True, blank=True)
    once_at = models.DateTimeField(null=True, blank=True)
    start_at = models.DateTimeField(null=True, blank=True)
    end_at = models.DateTimeField(null=True, blank=True)
    jitter_seconds = models.PositiveIntegerField(
        default=0, help_text="Each fire is delayed by a stable pseudo-random 0..jitter seconds."
    )
    misfire_policy = models.CharField(
        max_length=10, choices=MisfirePolicy.choices, default=MisfirePolicy.RUN_ONCE
    )
    catch_up_window_seconds = models.PositiveIntegerField(default=3600)
    catch_up_max_fires = models.PositiveIntegerField(default=10)
    enabled = models.BooleanField(default=True)
    # The next nominal fire time, and when to fire it (the same, plus this schedule's jitter).
    # Both are None once the schedule has nothing left to fire.
    next_scheduled_for = models.DateTimeField(null=True, blank=True)
    next_fire_at = models.DateTimeField(null=True, blank=True)
    last_fired_for = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def describe(self) -> str:
        """When it fires, as a person says it: "At 09:00, Monday through Friday, Europe/Paris",
        "Every 10 minutes", "Once, at 2030-01-01 00:00 UTC"."""
        if self.kind == ScheduleKind.CRON:
            return f"{cron_describe(self.cron_expression)}, {self.timezone}"
        if self.kind == ScheduleKind.INTERVAL:
            return interval_describe(self.interval_seconds or 0)
        if self.once_at is None:
            return "Once"
        return f"Once, at {self.once_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"

    def recurrence(self) -> Recurrence:
        return schedule_recurrence(**{field: getattr(self, field) for field in RECURRENCE_FIELDS})


class Schedule(ScheduleTiming):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="schedules")
    paused = models.BooleanField(default=False)
    pause_note = models.TextField(blank=True)
    paused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    paused_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job__name", "id"]
        indexes = [
            # The scheduler's only query over all schedules: the due ones, by time.
            models.Index(
                fields=["next_fire_at"],
                condition=Q(enabled=True, paused=False, next_fire_at__isnull=False),
                name="schedule_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job} — {self.describe()}"


# The columns a schedule's timing is made of (schedule_recurrence's arguments).
RECURRENCE_FIELDS = (
    "kind",
    "cron_expression",
    "timezone",
    "interval_seconds",
    "once_at",
    "start_at",
    "end_at",
)


def schedule_recurrence(
    *,
    kind: str,
    cron_expression: str,
    timezone: str,
    interval_seconds: int | None,
    once_at: datetime | None,
    start_at: datetime | None,
    end_at: datetime | None,
) -> Recurrence:
    """The timing of a schedule from its columns (a row read without its model, too)."""
    return Recurrence(
        cron=cron_expression if kind == ScheduleKind.CRON else "",
        timezone=timezone,
        interval=timedelta(seconds=interval_seconds)
        if kind == ScheduleKind.INTERVAL and interval_seconds
        else None,
        once_at=once_at if kind == ScheduleKind.ONCE else None,
        start_at=start_at,
        end_at=end_at,
    )


class SkipReason(models.TextChoices):
    PAUSED = "paused", "Paused"
    DISABLED = "disabled", "Disabled"
    OVERLAP = "overlap", "Previous run still active"
    MISFIRE = "misfire", "Missed while no scheduler ran"


class SkippedFire(models.Model):
    """Fire times a schedule did not fire, and why; consecutive ones of one cause are one row."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="skipped_fires")
    reason = models.CharField(max_length=10, choices=SkipReason.choices)
    first_scheduled_for = models.DateTimeField()
    last_scheduled_for = models.DateTimeField()
    count = models.PositiveIntegerField(help_text="How many fire times, counted up to a bound.")
    count_is_lower_bound = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["schedule", "-created_at"], name="skipped_schedule_idx")]

    def __str__(self) -> str:
        return f"{self.schedule_id}: {self.count} skipped ({self.reason})"
