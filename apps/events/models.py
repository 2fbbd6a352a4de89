from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from apps.core import ids


class EventType(models.TextChoices):
    """Every event dts publishes; docs/events.md describes each, apps/events/schemas/ checks it."""

    RUN_QUEUED = "dts.run.queued", "Run queued"
    RUN_STARTED = "dts.run.started", "Run started"
    RUN_RETRYING = "dts.run.retrying", "Run retrying"
    RUN_CANCELLING = "dts.run.cancelling", "Run cancelling"
    RUN_SUCCEEDED = "dts.run.succeeded", "Run succeeded"
    RUN_FAILED = "dts.run.failed", "Run failed"
    RUN_TIMED_OUT = "dts.run.timed_out", "Run timed out"
    RUN_CANCELLED = "dts.run.cancelled", "Run cancelled"
    RUN_LOST = "dts.run.lost", "Run lost"
    RUN_LOGGED = "dts.run.logged", "Run logged lines"
    JOB_CREATED = "dts.job.created", "Job created"
    JOB_UPDATED = "dts.job.updated", "Job updated"
    JOB_DELETED = "dts.job.deleted", "Job deleted"
    JOB_PAUSED = "dts.job.paused", "Job paused"
    JOB_RESUMED = "dts.job.resumed", "Job resumed"
    SCHEDULE_FIRED = "dts.schedule.fired", "Schedule fired"
    SCHEDULE_SKIPPED = "dts.schedule.skipped", "Schedule fired nothing"
    WORKFLOW_RUN_STARTED = "dts.workflow_run.started", "Workflow run started"
    WORKFLOW_RUN_STEPS_CHANGED = "dts.workflow_run.steps_changed", "Workflow run's steps changed"
    WORKFLOW_RUN_SUCCEEDED = "dts.workflow_run.succeeded", "Workflow run succeeded"
    WORKFLOW_RUN_FAILED = "dts.workflow_run.failed", "Workflow run failed"
    WORKFLOW_RUN_CANCELLED = "dts.workflow_run.cancelled", "Workflow run cancelled"
    WORKFLOW_RUN_RETRIED = "dts.workflow_run.retried", "Workflow run retried"


WORKFLOW_EVENT_PREFIX = "dts.workflow_run."


class OutboxEvent(models.Model):
    """An event written in the transaction of the change it describes; the relay publishes it to
    Kafka in `sequence` order and then sets `published_at` (apps.events.relay)."""

    sequence = models.BigAutoField(primary_key=True)
    # The CloudEvents id, by which consumers drop the duplicates a relay may send.
    event_id = models.UUIDField(default=ids.uuid4, editable=False)
    type = models.CharField(max_length=40, choices=EventType.choices)
    subject = models.CharField(max_length=100)
    # The Kafka key, so that each job's events stay in order: the job's id, or a workflow run's
    # event's workflow's (WORKFLOW_EVENT_PREFIX). Not a foreign key, as a job's events outlive it.
    job_id = models.BigIntegerField()
    time = models.DateTimeField()
    data = models.JSONField(encoder=DjangoJSONEncoder)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The relay's look-up of what is left to publish.
            models.Index(
                fields=["sequence"],
                condition=models.Q(published_at__isnull=True),
                name="outbox_unpublished_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.type} {self.subject}"


class IdleRelay(models.Model):
    """A relay waiting for new events, by the PostgreSQL backend of its connection. The outbox's
    insert trigger sends its NOTIFY only while one is waiting: a busy relay reads new rows anyway,
    and a NOTIFY serialises the commits of every writer (see the events migrations)."""

    backend_pid = models.IntegerField(primary_key=True)
    since = models.DateTimeField()

    def __str__(self) -> str:
        return f"relay backend {self.backend_pid} idle since {self.since}"
