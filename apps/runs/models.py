import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from apps.core import ids
from apps.jobs.models import Job, QueueField
from apps.runs.states import TERMINAL_STATES, RunState

# A run's id as callers hold it: a UUID, or its text (as a Celery message carries it).
RunId = uuid.UUID | str


class RunTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "Manual"
    API = "api", "API"
    RETRY = "retry", "Retry"


class Run(models.Model):
    """One execution of a job. Its id is also the Celery task id of the message that carries it."""

    id = models.UUIDField(primary_key=True, default=ids.uuid4, editable=False)
    # Foreign keys leave indexing to the composite indexes that start with them: every index is
    # written on each state change of a run.
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="runs", db_index=False)
    trigger = models.CharField(max_length=20, choices=RunTrigger.choices)
    state = models.CharField(max_length=20, choices=RunState.choices, default=RunState.QUEUED)
    attempt = models.PositiveIntegerField(default=1)
    # What was run, as it was when the run was triggered: later edits of the job do not rewrite it.
    task_type = models.CharField(max_length=200)
    args = models.JSONField(default=dict)
    queue = QueueField()
    # Set for runs fired by a schedule: the nominal fire time, which a schedule fires at most once.
    schedule = models.ForeignKey(
        "schedules.Schedule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
        db_index=False,
    )
    scheduled_for = models.DateTimeField(null=True, blank=True)
    priority = models.PositiveSmallIntegerField(default=5)
    created_at = models.DateTimeField(auto_now_add=True)
    # When it was last queued: recorded (or made due again) and, from its commit on, bound for the
    # broker. The reaper publishes again a run queued this long ago that no broker or worker holds.
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When the run is published again: after a retry's backoff, or a rate limit's or cap's wait.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=255, blank=True)
    # The last heartbeat of its worker that listed this run as executing; the reaper declares a
    # run whose worker stopped listing it lost.
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # Set for the run of a workflow's step: its end moves the workflow on (apps.workflows).
    workflow_run = models.ForeignKey(
        "workflows.WorkflowRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    result = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Only scheduled runs are in it: the others would be entries to write on every state
            # change that nothing ever looks up.
            models.UniqueConstraint(
                fields=["schedule", "scheduled_for"],
                condition=models.Q(schedule__isnull=False),
                name="run_unique_schedule_fire_time",
            ),
        ]
        indexes = [
            models.Index(fields=["job", "-created_at"], name="run_job_created_idx"),
            models.Index(fields=["state", "created_at"], name="run_state_created_idx"),
            # Runs by end time: the chart of runs per minute (runs_per_minute) and the retention's
            # sweep. Only ended runs are in it: one entry written when a run ends, none before.
            models.Index(
                fields=["finished_at"],
                condition=models.Q(finished_at__isnull=False),
                name="run_finished_idx",
            ),
            # A workflow run's runs, when it is deleted: only runs of a workflow are in it.
            models.Index(
                fields=["workflow_run"],
                condition=models.Q(workflow_run__isnull=False),
                name="run_workflow_idx",
            ),
            # The scheduler's look-up of runs waiting to be published again.
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(next_attempt_at__isnull=False),
                name="run_waiting_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job} run {self.id}"

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES


class RunAttempt(models.Model):
    """One attempt of a run: who ran it, when, and how it ended."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="attempts", db_index=False)
    number = models.PositiveIntegerField()
    worker = models.CharField(max_length=255, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    # The state this attempt ended in (a terminal state); blank while it runs.
    outcome = models.CharField(max_length=20, choices=RunState.choices, blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "number"]
        constraints = [
            models.UniqueConstraint(fields=["run", "number"], name="run_attempt_unique_number")
        ]

    def __str__(self) -> str:
        return f"{self.run_id} attempt {self.number}"


class Worker(models.Model):
    """A Celery worker node as its heartbeats describe it."""

    hostname = models.CharField(max_length=255, unique=True)
    pid = models.PositiveIntegerField()
    queues = models.JSONField(default=list)
    concurrency = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    last_heartbeat_at = models.DateTimeField()
    # The runs its pool was executing at the last heartbeat.
    active_run_ids = models.JSONField(default=list)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return self.hostname


class RunLogLine(models.Model):
    """One line a run's task logged or printed, in order; bounded per run (apps.runs.logs)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="log_lines", db_index=False)
    attempt = models.PositiveIntegerField()
    sequence = models.PositiveIntegerField()
    logged_at = models.DateTimeField()
    level = models.CharField(max_length=10)
    logger = models.CharField(max_length=200)
    message = models.TextField()

    class Meta:
        ordering = ["run", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["run", "sequence"], name="run_log_line_unique_sequence")
        ]

    def __str__(self) -> str:
        return f"{self.run_id} #{self.sequence} {self.level} {self.message[:60]}"
