"""Workflows: a team's named graph of steps, each running one of the team's jobs once the steps it
depends on have ended as its condition asks. A workflow run keeps the graph as it was when it was
triggered, and one row per step saying where the step is."""

from django.core.validators import RegexValidator
from django.db import models

from apps.core import ids
from apps.jobs.models import Job, OverlapPolicy
from apps.runs.models import Run, RunTrigger
from apps.schedules.models import ScheduleTiming

STEP_NAME = RegexValidator(
    r"^[a-z0-9][a-z0-9_.-]*$",
    "A step's name is lower-case letters, digits, '_', '.' and '-', starting with a letter or "
    "digit.",
)


class StepCondition(models.TextChoices):
    """When a step runs, once every step it depends on has ended."""

    ON_SUCCESS = "on_success", "When they all succeeded"
    ON_FAILURE = "on_failure", "When one of them failed"
    ALWAYS = "always", "Whatever their outcome"


class Workflow(models.Model):
    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="workflows")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # What a schedule does when it fires while a run of the workflow is still under way.
    overlap_policy = models.CharField(
        max_length=20, choices=OverlapPolicy.choices, default=OverlapPolicy.ALLOW
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "name"],
                name="workflow_name_unique_per_team",
                violation_error_message="Your team has a workflow of this name already.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class WorkflowStep(models.Model):
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="steps")
    name = models.CharField(max_length=100, validators=[STEP_NAME])
    # A job of the workflow's team; it cannot be deleted while a workflow runs it.
    job = models.ForeignKey(Job, on_delete=models.PROTECT, related_name="workflow_steps")
    args = models.JSONField(
        null=True,
        blank=True,
        help_text="Replaces the job's arguments for this step; empty: the job's.",
    )
    depends_on = models.JSONField(
        default=list, blank=True, help_text="The names of the steps it waits for."
    )
    condition = models.CharField(
        max_length=20, choices=StepCondition.choices, default=StepCondition.ON_SUCCESS
    )
    pass_results = models.BooleanField(
        default=False,
        help_text="Its task reads the results of the steps it depends on (apps.workflows.context).",
    )

    class Meta:
        ordering = ["workflow", "id"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "name"], name="workflow_step_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.workflow}: {self.name}"


class WorkflowSchedule(ScheduleTiming):
    """When the workflow is triggered: a job's schedule's timing and misfire policy, fired by
    apps.workflows.firing from the same scheduler ticks."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="schedules")

    class Meta:
        ordering = ["workflow", "id"]
        indexes = [
            models.Index(
                fields=["next_fire_at"],
                condition=models.Q(enabled=True, next_fire_at__isnull=False),
                name="workflow_schedule_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workflow} — {self.describe()}"


class WorkflowRunState(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class WorkflowRun(models.Model):
    id = models.UUIDField(primary_key=True, default=ids.uuid4, editable=False)
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=20, choices=RunTrigger.choices)
    state = models.CharField(
        max_length=20, choices=WorkflowRunState.choices, default=WorkflowRunState.RUNNING
    )
    # The steps as they were when it was triggered (name, job_id, args, depends_on, condition,
    # pass_results): later edits of the workflow do not change a run under way.
    graph = models.JSONField()
    # The schedule that fired it, and for which nominal time (a time fires once: unique).
    schedule = models.ForeignKey(
        WorkflowSchedule, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    scheduled_for = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["workflow", "-created_at"], name="workflow_run_created_idx"),
            # The retention's purge, and the notifier's look at what ended.
            models.Index(
                fields=["finished_at"],
                condition=models.Q(finished_at__isnull=False),
                name="workflow_run_finished_idx",
            ),
            # The overlap policy's look at a workflow's runs under way, and the gauge of them.
            models.Index(
                fields=["workflow"],
                condition=models.Q(state="running"),
                name="workflow_run_running_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "scheduled_for"],
                condition=models.Q(schedule__isnull=False),
                name="workflow_run_fired_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.workflow} run {self.id}"


class StepState(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for the steps it depends on
    RUNNING = "running", "Running"  # its run is under way (queued, running, retrying)
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"  # its run failed, timed out or was lost
    CANCELLED = "cancelled", "Cancelled"
    SKIPPED = "skipped", "Skipped"  # its condition was not met


class WorkflowStepRun(models.Model):
    workflow_run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="steps")
    name = models.CharField(max_length=100)
    state = models.CharField(max_length=20, choices=StepState.choices, default=StepState.PENDING)
    # Its latest run ("retry from failed" starts another).
    run = models.OneToOneField(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="workflow_step"
    )
    # The results of the steps it depends on, by step name, when it reads them (pass_results).
    inputs = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["workflow_run", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workflow_run", "name"], name="workflow_step_run_unique_name"
            )
        ]
        indexes = [
            # The scheduler's sweep (workflow_runs_advance): the steps whose run is under way.
            models.Index(
                fields=["state"],
                condition=models.Q(state="running"),
                name="workflow_step_running_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.workflow_run_id}: {self.name} {self.state}"
