from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction

from apps.accounts.models import Team
from apps.audit.models import AuditAction
from apps.audit.services import Actor, audit_record, field_changes
from apps.core.exceptions import InvalidTransition, ValidationFailed
from apps.core.validation import editable_fields_check, model_validate
from apps.events.models import EventType, OutboxEvent
from apps.events.outbox import event_new, events_record
from apps.jobs.models import Job, OverlapPolicy, Tag
from apps.schedules.services import schedules_reactivate
from apps.tasktypes.registry import task_args_validate
from dispatch.queues import DEFAULT_QUEUE

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
        "tags",
    }
)
MAX_TAGS = 20


def job_definition_validate(*, task_type: str, args: Any) -> None:
    """Refuse an unregistered task type, or arguments its schema does not accept."""
    task_args_validate(task_type_name=task_type, args=args)


def _job_validate(job: Job) -> None:
    _name_check(job)
    model_validate(job)
    job_definition_validate(task_type=job.task_type, args=job.args)


NAME_TAKEN = "Your team has a job of this name already."


def _name_check(job: Job) -> None:
    """Refuse a name another job of the job's team has (another team's jobs are no business of
    this one's: their names neither clash nor show)."""
    jobs = Job.objects.filter(team_id=job.team_id, name=job.name).exclude(pk=job.pk)
    if job.team_id is not None and jobs.exists():
        raise ValidationFailed(NAME_TAKEN, field="name")


def _job_save(job: Job, **options: Any) -> None:
    """Save; a job of the same team and name committed since _name_check is the same refusal."""
    try:
        with transaction.atomic():
            job.save(**options)
    except IntegrityError:
        _name_check(job)
        raise


@transaction.atomic
def job_create(
    *,
    team: Team,
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
    tags: Iterable[str] = (),
    actor: Actor = None,
) -> Job:
    job = Job(
        team=team,
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
    tag_objects = _tags(tags)
    _job_validate(job)
    _job_save(job)
    job.tags.set(tag_objects)
    definition = job_definition(job)
    events_record([_job_event(EventType.JOB_CREATED, job, definition=definition)])
    audit_record(
        actor=actor,
        action=AuditAction.CREATE,
        target=job,
        team_id=job.team_id,
        changes={field: {"old": None, "new": value} for field, value in definition.items()},
    )
    return job


@transaction.atomic
def job_update(*, job: Job, data: dict[str, Any], actor: Actor = None) -> Job:
    """Change the job's fields named in `data`; `enabled` off and on is a pause and a resume."""
    editable_fields_check(data, EDITABLE_FIELDS)
    before = job_definition(Job.objects.select_for_update().get(id=job.id))
    fields = {field: value for field, value in data.items() if field != "tags"}
    for field, value in fields.items():
        setattr(job, field, value)
    tag_objects = _tags(data["tags"]) if "tags" in data else None
    _job_validate(job)
    _job_save(job, update_fields=[*fields, "updated_at"])
    if tag_objects is not None:
        job.tags.set(tag_objects)
    changes = field_changes(before, job_definition(job), fields=data)
    if not changes:
        return job
    if "enabled" in changes:
        if job.enabled:
            schedules_reactivate(job=job)
        kind = EventType.JOB_RESUMED if job.enabled else EventType.JOB_PAUSED
        action = AuditAction.RESUME if job.enabled else AuditAction.PAUSE
    else:
        kind, action = EventType.JOB_UPDATED, AuditAction.UPDATE
    events_record([_job_event(kind, job, changes=changes)])
    audit_record(actor=actor, action=action, target=job, team_id=job.team_id, changes=changes)
    return job


@transaction.atomic
def job_delete(*, job: Job, actor: Actor = None) -> None:
    """Delete the job with its schedules and runs; refused while a workflow's step runs it."""
    workflows = sorted(set(job.workflow_steps.values_list("workflow__name", flat=True)))
    if workflows:
        raise InvalidTransition(
            f"Steps of the workflows {', '.join(workflows)} run this job: change them first.",
            field="workflows",
        )
    events_record([_job_event(EventType.JOB_DELETED, job)])
    audit_record(actor=actor, action=AuditAction.DELETE, target=job, team_id=job.team_id)
    job.delete()


def _tags(names: Iterable[str]) -> list[Tag]:
    """The tags of these names, created when new; refused when malformed or too many."""
    if isinstance(names, str) or not all(isinstance(name, str) for name in names):
        raise ValidationFailed("Tags are a list of names.", field="tags")
    unique = sorted(set(names))
    if len(unique) > MAX_TAGS:
        raise ValidationFailed(f"A job has at most {MAX_TAGS} tags.", field="tags")
    tags = []
    for name in unique:
        tag = Tag.objects.filter(name=name).first() or Tag(name=name)
        if tag.pk is None:
            try:
                model_validate(tag)
            except ValidationFailed as error:
                raise ValidationFailed(f"{name!r}: {error.message}", field="tags") from error
            tag.save()
        tags.append(tag)
    return tags


def job_definition(job: Job) -> dict[str, Any]:
    """What the job is defined by: its editable fields, by name."""
    definition = {field: getattr(job, field) for field in sorted(EDITABLE_FIELDS - {"tags"})}
    definition["tags"] = sorted(job.tags.values_list("name", flat=True)) if job.pk else []
    return definition


def _job_event(kind: EventType, job: Job, **details: Any) -> OutboxEvent:
    return event_new(
        type=kind,
        subject=f"jobs/{job.id}",
        job_id=job.id,
        data={"name": job.name, **details},
    )
