"""Making runs: the one builder of a run from its job, and the services that record new runs."""

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from apps.audit.models import AuditAction
from apps.audit.services import Actor, audit_record
from apps.core.exceptions import InvalidTransition
from apps.events.outbox import events_record
from apps.jobs.models import Job
from apps.runs.models import Run, RunTrigger
from apps.runs.services.publish import run_queued_event, runs_publish_on_commit
from apps.runs.states import RunState
from apps.tasktypes.registry import task_args_validate

if TYPE_CHECKING:
    from apps.schedules.models import Schedule


def run_build(
    *,
    job: Job,
    trigger: RunTrigger,
    now: datetime,
    args: dict[str, Any] | None = None,
    schedule: "Schedule | None" = None,
    scheduled_for: datetime | None = None,
    refusal: str | None = None,
) -> Run:
    """A new run of `job`, not saved: queued at `now`, with the task type, arguments (`args`, or the
    job's), queue and priority copied from the job, so later edits of the job do not rewrite it.
    A `refusal` (why the job cannot run: its arguments no longer validate) makes it a failed run
    instead, recorded rather than dropped so that the operator sees why. Callers save it: one at a
    time (run_trigger) or many in one statement (the scheduler's models_insert)."""
    return Run(
        job=job,
        schedule=schedule,
        trigger=trigger,
        task_type=job.task_type,
        args=job.args if args is None else args,
        queue=job.queue,
        priority=job.priority,
        scheduled_for=scheduled_for,
        state=RunState.FAILED if refusal else RunState.QUEUED,
        queued_at=None if refusal else now,
        error=refusal or "",
        finished_at=now if refusal else None,
    )


def run_trigger(
    *,
    job: Job,
    trigger: RunTrigger = RunTrigger.MANUAL,
    args: dict[str, Any] | None = None,
    actor: Actor = None,
    retry_of: Run | None = None,
) -> Run:
    """Record a new queued run of `job`, and publish it to the broker once it is committed.
    `args` replaces the job's arguments for this run (validated against its task type);
    `retry_of` is the ended run it repeats (see run_retry)."""
    task_args_validate(task_type_name=job.task_type, args=job.args if args is None else args)
    now = timezone.now()
    with transaction.atomic():
        run = run_build(job=job, trigger=trigger, now=now, args=args)
        run.save(force_insert=True)
        events_record([run_queued_event(run, time=now)])
        changes = {} if args is None else {"args": {"old": job.args, "new": args}}
        if retry_of is not None:
            changes["retry_of"] = {"old": None, "new": str(retry_of.id)}
        audit_record(
            actor=actor,
            action=AuditAction.TRIGGER if retry_of is None else AuditAction.RETRY,
            target=run,
            team_id=job.team_id,
            changes=changes,
        )
        runs_publish_on_commit([run])
    return run


def run_retry(*, run: Run, actor: Actor = None) -> Run:
    """A new run of the same job with the same arguments, once `run` has ended without success."""
    if not run.is_terminal or run.state == RunState.SUCCEEDED:
        raise InvalidTransition(
            "Only a run that ended without success can be retried; this one is "
            f"{run.get_state_display().lower()}.",
            field="state",
        )
    return run_trigger(
        job=run.job, trigger=RunTrigger.RETRY, args=run.args, actor=actor, retry_of=run
    )
