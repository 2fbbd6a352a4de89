"""Every change of a run's state after its birth: a worker starts it, each attempt ends in an
outcome that either finishes the run or schedules its next attempt, a due retry is queued again,
an operator cancels it. Called by the Celery task and its hooks, the scheduler, the API and admin.

Every write is a guarded update whose allowed sources are read from apps.runs.states (`runs_move`
for the ORM's, apps.runs.services.hotpath for the hot path's), and a worker's writes are also
guarded by the attempt number, so a redelivered message, a late signal or a stale message of an
earlier attempt changes nothing.
"""

import json
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Min, QuerySet
from django.utils import timezone

from apps.audit.models import AuditAction
from apps.audit.services import Actor, audit_record
from apps.core.db import survives_database_restart
from apps.core.exceptions import InvalidTransition
from apps.core.notify import scheduler_wake, workflows_wake
from apps.events.models import OutboxEvent
from apps.events.outbox import events_record, run_event
from apps.events.subscribers import events_announce
from apps.jobs.models import Job
from apps.runs.metrics import (
    LostDetector,
    run_deferred_record,
    run_ended_record,
    run_lost_record,
    run_started_record,
)
from apps.runs.models import Run, RunAttempt, RunId, RunTrigger
from apps.runs.services.hotpath import datetime_from_row, run_start_write, run_succeed_write
from apps.runs.services.publish import run_queued_event, runs_publish_on_commit
from apps.runs.states import EXECUTING_STATES, RunState, sources_of
from apps.runs.throttle import Limit, rate_limit_wait
from apps.tasktypes.registry import task_type_get
from dispatch.messages import run_cancel_send

logger = logging.getLogger(__name__)

RETRYABLE_OUTCOMES = frozenset({RunState.FAILED, RunState.TIMED_OUT, RunState.LOST})
# An idempotent job's attempt lost with its worker is re-executed at once, without using up an
# attempt; this many lost attempts in one run end it, so a task that kills its process stops.
MAX_LOST_REEXECUTIONS = 3
# A run held back by its job's cap on concurrent runs tries again after this long.
CAPPED_RETRY_SECONDS = 2.0
# Waiting in PostgreSQL to be published: a retry after its backoff (it becomes queued), or a queued
# run a limit deferred (it stays queued, waiting to start).
WAITING_STATES = sources_of(RunState.QUEUED) | sources_of(RunState.RUNNING)


def runs_move(runs: QuerySet[Run], *, to: RunState, **fields: Any) -> int:
    """Move to `to` those of `runs` whose state the table allows to move there, setting `fields`;
    return how many moved. One guarded UPDATE: the one way a run's state changes, but for the hot
    path's statements (apps.runs.services.hotpath), which read the same table."""
    return runs.filter(state__in=sources_of(to)).update(state=to, **fields)


class _HeldBack(Exception):
    """A limit holds the run back: the start is rolled back and the run deferred."""

    def __init__(self, *, seconds: float, reason: str) -> None:
        super().__init__(reason)
        self.seconds, self.reason = seconds, reason


@dataclass(frozen=True)
class StartedRun:
    """What a worker needs to execute the attempt it has started."""

    id: RunId
    job_id: int
    task_type: str
    args: Any
    queue: str


@survives_database_restart
def run_start(
    *, run_id: RunId, attempt: int, worker: str, limited: bool = True
) -> StartedRun | None:
    """Claim attempt `attempt` of the run; None when it must not start now: that attempt is already
    running or over (a redelivered or stale message), the run is cancelled or unknown, or (when
    `limited`, as its message says: apps.runs.services.publish.run_start_limited) its job's cap on
    concurrent runs or a rate limit holds it back (it is then deferred, not dropped).

    The attempt's row (RunAttempt) is written when it ends; until then the run itself says which
    attempt is executing, where and since when. Retried while the database restarts: a start that
    committed but whose answer was lost finds its attempt taken, and the reaper ends that run."""
    now = timezone.now()
    if not limited:
        started = _run_start_unlimited(run_id=run_id, attempt=attempt, worker=worker, now=now)
        if started is not None:
            return started
    try:
        with transaction.atomic():
            if not runs_move(
                Run.objects.filter(id=run_id, attempt=attempt),
                to=RunState.RUNNING,
                worker=worker,
                started_at=now,
                next_attempt_at=None,
            ):
                logger.info("Run %s attempt %s not started: taken or over", run_id, attempt)
                return None
            run = Run.objects.select_related("job").get(id=run_id)
            _limits_check(run)
            events_record([_started_event(run_id, run.job_id, attempt, worker, now)])
    except _HeldBack as held:
        # Rolled back: the run is waiting again as it was; publish it again later.
        _run_defer(
            run_id=run_id,
            attempt=attempt,
            seconds=held.seconds,
            reason=held.reason,
            queue=run.queue,
        )
        return None
    run_started_record(
        queue=run.queue, task_type=run.task_type, queued_at=run.queued_at, started_at=now
    )
    return StartedRun(
        id=run.id, job_id=run.job_id, task_type=run.task_type, args=run.args, queue=run.queue
    )


def _run_start_unlimited(
    *, run_id: RunId, attempt: int, worker: str, now: datetime
) -> StartedRun | None:
    """The common case, in one statement: start a run no limit applies to. None when it did not
    start: run_start then takes the general path, which says why."""
    # The event's job id (0 here) is read from the run row by its insert.
    event = _started_event(run_id, 0, attempt, worker, now)
    row = run_start_write(run_id=run_id, attempt=attempt, worker=worker, now=now, event=event)
    if row is None:
        return None
    job_id, task_type, args, queue, queued_at = row
    event.job_id = job_id
    events_announce([event])
    run_started_record(
        queue=queue, task_type=task_type, queued_at=datetime_from_row(queued_at), started_at=now
    )
    return StartedRun(
        id=run_id,
        job_id=job_id,
        task_type=task_type,
        args=json.loads(args) if args else {},
        queue=queue,
    )


def _started_event(
    run_id: RunId, job_id: int, attempt: int, worker: str, now: datetime
) -> OutboxEvent:
    return run_event(
        RunState.RUNNING, run_id=run_id, job_id=job_id, attempt=attempt, time=now, worker=worker
    )


def _limits_check(run: Run) -> None:
    """Raise _HeldBack when the job's cap on concurrent runs is reached or a rate limit is spent
    (the cap first, so a capped run takes no token)."""
    job = run.job
    if job.max_concurrent_runs is not None:
        # Serialise the starts of the job's runs, so two workers cannot both take the last slot.
        Job.objects.select_for_update().filter(id=job.id).first()
        executing = Run.objects.filter(job=job, state__in=EXECUTING_STATES).count()
        if executing > job.max_concurrent_runs:  # this run counts itself
            raise _HeldBack(seconds=CAPPED_RETRY_SECONDS, reason="concurrency cap")
    wait = rate_limit_wait(_rate_limits(run))
    if wait:
        raise _HeldBack(seconds=wait, reason="rate limit")


def _rate_limits(run: Run) -> list[Limit]:
    limits: list[Limit] = []
    task_type_limit = task_type_get(run.task_type).rate_limit_per_minute
    if task_type_limit:
        limits.append((f"task_type:{run.task_type}", task_type_limit))
    if run.job.rate_limit_per_minute:
        limits.append((f"job:{run.job_id}", run.job.rate_limit_per_minute))
    return limits


def _run_defer(*, run_id: RunId, attempt: int, seconds: float, reason: str, queue: str) -> None:
    """Hold back a run waiting to start: the scheduler publishes it again when `seconds` have
    passed. Not a move: it stays queued."""
    deferred = Run.objects.filter(
        id=run_id, attempt=attempt, state__in=sources_of(RunState.RUNNING)
    ).update(next_attempt_at=timezone.now() + timedelta(seconds=seconds))
    if deferred:
        logger.info("Run %s deferred %.1f s by its %s", run_id, seconds, reason)
        run_deferred_record(queue=queue)
        scheduler_wake()


@dataclass(frozen=True)
class _Ended:
    """How an attempt was recorded ended: its outcome (after a cancel's), and the run's labels."""

    outcome: RunState
    queue: str


@survives_database_restart
def run_attempt_end(
    *,
    run_id: RunId,
    attempt: int,
    outcome: RunState,
    result: Any = None,
    error: str = "",
    traceback: str = "",
) -> bool:
    """Record how the attempt ended; then retry the run if its job allows, or finish it. False
    when the attempt had already ended (a late or repeated signal)."""
    ended = _attempt_end(
        run_id=run_id,
        attempt=attempt,
        outcome=outcome,
        result=result,
        error=error,
        traceback=traceback,
    )
    return ended is not None


def _attempt_end(
    *,
    run_id: RunId,
    attempt: int,
    outcome: RunState,
    result: Any = None,
    error: str = "",
    traceback: str = "",
) -> _Ended | None:
    if outcome == RunState.SUCCEEDED:
        try:
            json.dumps(result, cls=DjangoJSONEncoder)
        except (TypeError, ValueError) as problem:
            outcome, result = RunState.FAILED, None
            error = f"The task's result cannot be stored as JSON: {problem}"
    now = timezone.now()
    if outcome == RunState.SUCCEEDED:
        return _run_succeed(run_id=run_id, attempt=attempt, result=result, now=now)
    with transaction.atomic():
        run = (
            # Only the run's row: locking its job's would serialise every run of the job.
            Run.objects.select_for_update(of=("self",))
            .select_related("job")
            .filter(id=run_id, attempt=attempt, state__in=EXECUTING_STATES)
            .first()
        )
        if run is None:
            logger.info("Run %s attempt %s already ended; %s ignored", run_id, attempt, outcome)
            return None
        if run.state == RunState.CANCELLING and outcome in RETRYABLE_OUTCOMES:
            # Stopped as asked: the task raised on the cancel signal, or its process was killed.
            outcome = RunState.CANCELLED
        RunAttempt.objects.create(
            run=run,
            number=attempt,
            worker=run.worker,
            started_at=run.started_at or now,  # set by run_start; None only to the type checker
            finished_at=now,
            outcome=outcome,
            error=error,
            traceback=traceback,
        )
        delay = _retry_delay(run, outcome) if run.state == RunState.RUNNING else None
        this_run = Run.objects.filter(id=run.id)
        if delay is not None:
            runs_move(
                this_run,
                to=RunState.RETRYING,
                attempt=attempt + 1,
                next_attempt_at=now + delay,
                error=error,
                traceback=traceback,
            )
            events_record(
                [
                    run_event(
                        RunState.RETRYING,
                        run_id=run.id,
                        job_id=run.job_id,
                        attempt=attempt,
                        time=now,
                        outcome=outcome,
                        error=error,
                        next_attempt_at=now + delay,
                    )
                ]
            )
            scheduler_wake()
        else:
            runs_move(
                this_run,
                to=outcome,
                result=result,
                error=error,
                traceback=traceback,
                finished_at=now,
            )
            events_record(
                [
                    run_event(
                        outcome,
                        run_id=run.id,
                        job_id=run.job_id,
                        attempt=attempt,
                        time=now,
                        error=error,
                    )
                ]
            )
    if delay is None and run.workflow_run_id is not None:
        workflows_wake(run.workflow_run_id)
    # Counted once committed: a rolled-back ending (retried by survives_database_restart) is not.
    run_ended_record(
        queue=run.queue,
        task_type=run.task_type,
        outcome=outcome,
        started_at=run.started_at,
        ended_at=now,
        retried=delay is not None,
    )
    return _Ended(outcome=outcome, queue=run.queue)


def _run_succeed(*, run_id: RunId, attempt: int, result: Any, now: datetime) -> _Ended | None:
    """The common case: nothing to decide. The run, its attempt's record and its event are
    written together, and only if the run's guarded update matched."""
    # The job id (0 here) is read from the run row by the event's insert.
    event = run_event(RunState.SUCCEEDED, run_id=run_id, job_id=0, attempt=attempt, time=now)
    ended = run_succeed_write(run_id=run_id, attempt=attempt, result=result, now=now, event=event)
    if ended is None:
        logger.info("Run %s attempt %s already ended; success ignored", run_id, attempt)
        return None
    job_id, queue, task_type, started_at, workflow_run_id = ended
    event.job_id = job_id
    events_announce([event])
    if workflow_run_id is not None:
        workflows_wake(workflow_run_id)
    run_ended_record(
        queue=queue,
        task_type=task_type,
        outcome=RunState.SUCCEEDED,
        started_at=datetime_from_row(started_at),
        ended_at=now,
    )
    return _Ended(outcome=RunState.SUCCEEDED, queue=queue)


@survives_database_restart
def run_attempt_lost(
    *, run_id: RunId, attempt: int, reason: str, detected_by: LostDetector
) -> bool:
    """End the attempt whose process or worker vanished (`detected_by` says who saw it): it
    retries or ends LOST per its job's policy, or ends CANCELLED when it was being cancelled (a
    cancel kills the process of a task that did not stop: not a loss)."""
    ended = _attempt_end(run_id=run_id, attempt=attempt, outcome=RunState.LOST, error=reason)
    if ended is not None and ended.outcome == RunState.LOST:
        run_lost_record(queue=ended.queue, detected_by=detected_by)
    return ended is not None


def run_cancel_confirm(*, run_id: RunId, attempt: int) -> bool:
    """The worker stopped a run that was asked to stop."""
    return run_attempt_end(
        run_id=run_id, attempt=attempt, outcome=RunState.CANCELLED, error="Cancelled."
    )


def _retry_delay(run: Run, outcome: RunState) -> timedelta | None:
    """When the next attempt should start, or None when the run ends with this outcome."""
    if outcome not in RETRYABLE_OUTCOMES:
        return None
    job = run.job
    lost = 0
    if job.idempotent:
        lost = RunAttempt.objects.filter(run=run, outcome=RunState.LOST).count()
        if outcome == RunState.LOST:
            return timedelta(0) if lost <= MAX_LOST_REEXECUTIONS else None
    if run.attempt - lost >= job.max_attempts:
        return None
    return job.retry_delay(failed_attempt=run.attempt - lost, random_fraction=random.random())  # noqa: S311


def runs_retry_due(*, now: datetime, limit: int = 1000) -> int:
    """Publish the runs whose wait is over: retries after their backoff, and queued runs a rate
    limit or concurrency cap deferred."""
    with transaction.atomic():
        due = list(
            Run.objects.select_related("job")
            .select_for_update(skip_locked=True, of=("self",))
            .filter(state__in=WAITING_STATES, next_attempt_at__lte=now)
            .order_by("next_attempt_at")[:limit]
        )
        # One statement for both: a retry moves to QUEUED; a deferred run, queued already, stays.
        Run.objects.filter(id__in=[run.id for run in due], state__in=WAITING_STATES).update(
            state=RunState.QUEUED, next_attempt_at=None, queued_at=now
        )
        events_record(
            run_queued_event(run, time=now, trigger=RunTrigger.RETRY)
            for run in due
            if run.state in sources_of(RunState.QUEUED)  # a deferred run was queued already
        )
        runs_publish_on_commit(due)
    return len(due)


def runs_next_retry_at() -> datetime | None:
    waiting = Run.objects.filter(state__in=WAITING_STATES, next_attempt_at__isnull=False)
    return waiting.aggregate(due=Min("next_attempt_at"))["due"]


def runs_cancel(*, runs: list[Run]) -> None:
    """Cancel runs. One not started yet ends CANCELLED at once (its message, when it arrives, is
    refused by the start guard). A running one becomes CANCELLING, and after commit its worker is
    told to stop it: the task is asked first, its process killed after the grace period; the run
    ends CANCELLED when the attempt ends (workers.control, run_attempt_end)."""
    now = timezone.now()
    stoppable = sources_of(RunState.CANCELLING)
    not_started = sources_of(RunState.CANCELLED) - EXECUTING_STATES
    error = "Cancelled before it started."
    with transaction.atomic():
        found = list(
            Run.objects.select_for_update()
            .filter(id__in=[run.id for run in runs], state__in=stoppable | not_started)
            .order_by("id")
            .values_list("id", "job_id", "attempt", "state", "workflow_run_id")
        )
        running = [run_id for run_id, _, _, state, _ in found if state in stoppable]
        runs_move(Run.objects.filter(id__in=running), to=RunState.CANCELLING)
        runs_move(
            Run.objects.filter(id__in=[run_id for run_id, *_ in found if run_id not in running]),
            to=RunState.CANCELLED,
            finished_at=now,
            error=error,
        )
        events_record(
            run_event(
                RunState.CANCELLING if state in stoppable else RunState.CANCELLED,
                run_id=run_id,
                job_id=job_id,
                attempt=attempt,
                time=now,
                **({} if state in stoppable else {"error": error}),
            )
            for run_id, job_id, attempt, state, _ in found
        )
        if any(state not in stoppable and workflow_run for *_, state, workflow_run in found):
            workflows_wake()

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
