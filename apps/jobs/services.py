from typing import Any

from django.db import transaction

from apps.core.validation import editable_fields_check, model_validate
from apps.events.models import EventType, OutboxEvent
from apps.events.outbox import event_new, events_record
from apps.jobs.models import Job, OverlapPolicy
from apps.schedules.services import schedules_reactivate
from workers.queues import DEFAULT_QUEUE
from workers.registry import task_args_validate

EDITABLE_FIELDS = frozenset(
    {
        "name",
        "description",
        "task_type",
        "args",
        "queue",
        "soft_timeout_seconds",
        "hard_timeout_seconds",
        "enabled",
        "overlap_policy",
        "priority",
        "rate_limit_per_minute",
        "max_concurrent_runs",
        "max_attempts",
        "retry_backoff_seconds",
        "retry_backoff_max_seconds",
        "retry_jitter",
        "idempotent",
    }
)


def job_definition_validate(*, task_type: str, args: Any) -> None:
    """Refuse an unregistered task type, or arguments its schema does not accept."""
    task_args_validate(task_type_name=task_type, args=args)


def _job_validate(job: Job) -> None:
    model_validate(job)
    job_definition_validate(task_type=job.task_type, args=job.args)


@transaction.atomic
def job_create(
    *,
    name: str,
    task_type: str,
    args: dict[str, Any] | None = None,
    description: str = "",
    queue: str = DEFAULT_QUEUE,
    soft_timeout_seconds: int | None = None,
    hard_timeout_seconds: int | None = None,
    enabled: bool = True,
    overlap_policy: str = OverlapPolicy.ALLOW,
    priority: int = 5,
    rate_limit_per_minute: int | None = None,
    max_concurrent_runs: int | None = None,
    max_attempts: int = 1,
    retry_backoff_seconds: int = 10,
    retry_backoff_max_seconds: int = 3600,
    retry_jitter: bool = True,
    idempotent: bool = False,
) -> Job:
    job = Job(
        name=name,
        description=description,
        task_type=task_type,
        args={} if args is None else args,
        queue=queue,
        soft_timeout_seconds=soft_timeout_seconds,
        hard_timeout_seconds=hard_timeout_seconds,
        enabled=enabled,
        overlap_policy=overlap_policy,
        priority=priority,
        rate_limit_per_minute=rate_limit_per_minute,
        max_concurrent_runs=max_concurrent_runs,
        max_attempts=max_attempts,
        retry_backoff_seconds=retry_backoff_seconds,
        retry_backoff_max_seconds=retry_backoff_max_seconds,
        retry_jitter=retry_jitter,
        idempotent=idempotent,
    )
    _job_validate(job)
    job.save()
    events_record([_job_event(EventType.JOB_CREATED, job, definition=_definition(job))])
    return job


@transaction.atomic
def job_update(*, job: Job, data: dict[str, Any]) -> Job:
    editable_fields_check(data, EDITABLE_FIELDS)
    before = _definition(Job.objects.select_for_update().get(id=job.id))
    for field, value in data.items():
        setattr(job, field, value)
    _job_validate(job)
    job.save(update_fields=[*data, "updated_at"])
    after = _definition(job)
    changes = {
        field: {"old": before[field], "new": after[field]}
        for field in sorted(data)
        if before[field] != after[field]
    }
    if not changes:
        return job
    if "enabled" in changes:
        if job.enabled:
            schedules_reactivate(job=job)
        kind = EventType.JOB_RESUMED if job.enabled else EventType.JOB_PAUSED
    else:
        kind = EventType.JOB_UPDATED
    events_record([_job_event(kind, job, changes=changes)])
    return job


@transaction.atomic
def job_delete(*, job: Job) -> None:
    """Delete the job with its schedules and runs."""
    events_record([_job_event(EventType.JOB_DELETED, job)])
    job.delete()


def _definition(job: Job) -> dict[str, Any]:
    return {field: getattr(job, field) for field in sorted(EDITABLE_FIELDS)}


def _job_event(kind: EventType, job: Job, **details: Any) -> OutboxEvent:
    return event_new(
        type=kind,
        subject=f"jobs/{job.id}",
        job_id=job.id,
        data={"name": job.name, **details},
    )
