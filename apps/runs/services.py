import uuid
from datetime import datetime
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from apps.audit.models import AuditAction
from apps.audit.services import Actor, audit_record
from apps.core.exceptions import InvalidTransition
from apps.events.models import OutboxEvent
from apps.events.outbox import events_record, run_event
from apps.jobs.models import Job
from apps.runs.models import Run, RunTrigger
from apps.runs.states import RunState, sources_of
from apps.tasktypes.registry import task_args_validate, task_type_get
from dispatch.messages import ExecuteRun, execute_run_send, run_cancel_send

RunId = uuid.UUID | str


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
    run_args = job.args if args is None else args
    task_args_validate(task_type_name=job.task_type, args=run_args)
    now = timezone.now()
    with transaction.atomic():
        run = Run.objects.create(
            job=job,
            trigger=trigger,
            task_type=job.task_type,
            args=run_args,
            queue=job.queue,
            priority=job.priority,
            queued_at=now,
        )
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
        # robust: the run is committed whatever the broker says; one whose message never reached
        # the broker is published again by the reaper (apps.runs.reaper.runs_republish_missing).
        transaction.on_commit(partial(runs_publish, runs=[run]), robust=True)
    return run


def run_queued_event(run: Run, *, time: datetime, trigger: RunTrigger | None = None) -> OutboxEvent:
    return run_event(
        RunState.QUEUED,
        run_id=run.id,
        job_id=run.job_id,
        attempt=run.attempt,
        time=time,
        trigger=trigger or run.trigger,
        scheduled_for=run.scheduled_for,
    )


def runs_publish(*, runs: list[Run]) -> None:
    """Send each queued run's execute-run message, after the commit that queued it.

    Nothing is written: a run is queued before it is sent. A failed send is not retried in line:
    it raises, and the reaper publishes the runs that no broker or worker holds, which also covers
    a publisher that died before sending.
    """
    execute_run_send(
        ExecuteRun(
            run_id=str(run.id),
            attempt=run.attempt,
            limited=run_start_limited(run),
            queue=run.queue,
            priority=run.priority,
            soft_time_limit=soft_time_limit,
            time_limit=time_limit,
        )
        for run in runs
        for soft_time_limit, time_limit in [run.job.time_limits()]
    )


def run_start_limited(run: Run) -> bool:
    """Whether a limit applies to the run's start: its job's cap on concurrent runs or rate limit,
    or its task type's rate limit. Decided when it is published: the worker checks limits only for
    runs whose message says so."""
    job = run.job
    return bool(
        job.max_concurrent_runs is not None
        or job.rate_limit_per_minute
        or task_type_get(run.task_type).rate_limit_per_minute
    )


def runs_retry_due(*, now: datetime, limit: int = 1000) -> int:
    """Publish the runs whose wait is over: retries after their backoff, and queued runs a rate
    limit or concurrency cap deferred."""
    waiting = (RunState.RETRYING, RunState.QUEUED)
    with transaction.atomic():
        due = list(
            Run.objects.select_related("job")
            .select_for_update(skip_locked=True, of=("self",))
            .filter(state__in=waiting, next_attempt_at__lte=now)
            .order_by("next_attempt_at")[:limit]
        )
        Run.objects.filter(id__in=[run.id for run in due], state__in=waiting).update(
            state=RunState.QUEUED, next_attempt_at=None, queued_at=now
        )
        events_record(
            run_queued_event(run, time=now, trigger=RunTrigger.RETRY)
            for run in due
            if run.state == RunState.RETRYING  # a deferred run was queued already
        )
        transaction.on_commit(partial(runs_publish, runs=due), robust=True)
    return len(due)


def runs_next_retry_at() -> datetime | None:
    waiting = Run.objects.filter(
        state__in=(RunState.RETRYING, RunState.QUEUED), next_attempt_at__isnull=False
    )
    return waiting.aggregate(due=Min("next_attempt_at"))["due"]


def runs_cancel(*, runs: list[Run]) -> None:
    """Cancel runs. One not started yet ends CANCELLED at once (its message, when it arrives, is
    refused by the start guard). A running one becomes CANCELLING, and after commit its worker is
    told to stop it: the task is asked first, its process killed after the grace period; the run
    ends CANCELLED when the attempt ends (workers.control, apps.runs.execution)."""
    now = timezone.now()
    waiting = sources_of(RunState.CANCELLED) - {RunState.CANCELLING}
    error = "Cancelled before it started."
    with transaction.atomic():
        found = list(
            Run.objects.select_for_update()
            .filter(id__in=[run.id for run in runs], state__in={*waiting, RunState.RUNNING})
            .order_by("id")
            .values_list("id", "job_id", "attempt", "state")
        )
        running = [run_id for run_id, _, _, state in found if state == RunState.RUNNING]
        Run.objects.filter(id__in=running).update(state=RunState.CANCELLING)
        Run.objects.filter(id__in=[run_id for run_id, *_ in found if run_id not in running]).update(
            state=RunState.CANCELLED, finished_at=now, error=error
        )
        events_record(
            run_event(
                RunState.CANCELLING if state == RunState.RUNNING else RunState.CANCELLED,
                run_id=run_id,
                job_id=job_id,
                attempt=attempt,
                time=now,
                **({} if state == RunState.RUNNING else {"error": error}),
            )
            for run_id, job_id, attempt, state in found
        )

    transaction.on_commit(
        partial(run_cancel_send, [str(run_id) for run_id in running]), robust=True
    )


@transaction.atomic
def run_cancel(*, run: Run, actor: Actor = None) -> Run:
    """Cancel one run (see runs_cancel); refused when it has already ended."""
    if run.is_terminal:
        raise InvalidTransition(
            f"The run is already {run.get_state_display().lower()}.", field="state"
        )
    state = run.state
    runs_cancel(runs=[run])
    run.refresh_from_db()
    audit_record(
        actor=actor,
        action=AuditAction.CANCEL,
        target=run,
        team_id=run.job.team_id,
        changes={"state": {"old": state, "new": run.state}},
    )
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
