"""What happens to a run on the worker side: it starts, and each attempt ends in an outcome that
either finishes the run or schedules its next attempt. Called by the Celery task and its hooks.

Every write is guarded by the run's state and attempt number, so a redelivered message, a late
signal or a stale message of an earlier attempt changes nothing.
"""

import json
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from apps.core.db import execute_prepared, survives_database_restart
from apps.core.notify import scheduler_wake
from apps.events.models import OutboxEvent
from apps.events.outbox import event_insert_from_run, events_enabled, events_record, run_event
from apps.events.subscribers import events_announce
from apps.jobs.models import Job
from apps.runs.models import Run, RunAttempt
from apps.runs.services import RunId
from apps.runs.states import EXECUTING_STATES, RunState, sources_of
from apps.runs.throttle import Limit, rate_limit_wait
from apps.tasktypes.registry import task_type_get

logger = logging.getLogger(__name__)

RETRYABLE_OUTCOMES = frozenset({RunState.FAILED, RunState.TIMED_OUT, RunState.LOST})
# An idempotent job's attempt lost with its worker is re-executed at once, without using up an
# attempt; this many lost attempts in one run end it, so a task that kills its process stops.
MAX_LOST_REEXECUTIONS = 3
# A run held back by its job's cap on concurrent runs tries again after this long.
CAPPED_RETRY_SECONDS = 2.0


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


@survives_database_restart
def run_start(
    *, run_id: RunId, attempt: int, worker: str, limited: bool = True
) -> StartedRun | None:
    """Claim attempt `attempt` of the run; None when it must not start now: that attempt is already
    running or over (a redelivered or stale message), the run is cancelled or unknown, or (when
    `limited`, as its message says: apps.runs.services.run_start_limited) its job's cap on
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
            if not Run.objects.filter(
                id=run_id, attempt=attempt, state__in=sources_of(RunState.RUNNING)
            ).update(state=RunState.RUNNING, worker=worker, started_at=now, next_attempt_at=None):
                logger.info("Run %s attempt %s not started: taken or over", run_id, attempt)
                return None
            run = Run.objects.select_related("job").get(id=run_id)
            _limits_check(run)
            events_record([_started_event(run_id, run.job_id, attempt, worker, now)])
    except _HeldBack as held:
        # Rolled back: the run is waiting again as it was; publish it again later.
        _run_defer(run_id=run_id, attempt=attempt, seconds=held.seconds, reason=held.reason)
        return None
    return StartedRun(id=run.id, job_id=run.job_id, task_type=run.task_type, args=run.args)


def _run_start_unlimited(
    *, run_id: RunId, attempt: int, worker: str, now: datetime
) -> StartedRun | None:
    """The common case, in one statement: start a run no limit applies to. None when it did not
    start: run_start then takes the general path, which says why."""
    states = sorted(sources_of(RunState.RUNNING))
    # The event's job id (0 here) is read from the run row by its insert.
    event = _started_event(run_id, 0, attempt, worker, now)
    row = _run_update_and_insert(
        run_id=run_id,
        update=(
            "SET state = %s, worker = %s, started_at = %s, next_attempt_at = NULL "
            f"WHERE id = %s AND attempt = %s AND state IN {_placeholders(states)}"
        ),
        params=[RunState.RUNNING.value, worker, _datetime(now), _run_id(run_id), attempt, *states],
        inserts=_event_inserts(event),
        returning="job_id, task_type, args",
    )
    if row is None:
        return None
    job_id, task_type, args = row
    event.job_id = job_id
    events_announce([event])
    return StartedRun(
        id=run_id, job_id=job_id, task_type=task_type, args=json.loads(args) if args else {}
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


def _run_defer(*, run_id: RunId, attempt: int, seconds: float, reason: str) -> None:
    """Hold a queued run back: the scheduler publishes it again when `seconds` have passed."""
    deferred = Run.objects.filter(id=run_id, attempt=attempt, state=RunState.QUEUED).update(
        next_attempt_at=timezone.now() + timedelta(seconds=seconds)
    )
    if deferred:
        logger.info("Run %s deferred %.1f s by its %s", run_id, seconds, reason)
        scheduler_wake()


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
    """Record how the attempt ended; then retry the run if its job allows, or finish it."""
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
            .filter(id=run_id, attempt=attempt, state__in=(RunState.RUNNING, RunState.CANCELLING))
            .first()
        )
        if run is None:
            logger.info("Run %s attempt %s already ended; %s ignored", run_id, attempt, outcome)
            return False
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
        if delay is not None:
            Run.objects.filter(id=run.id).update(
                state=RunState.RETRYING,
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
            return True
        Run.objects.filter(id=run.id).update(
            state=outcome, result=result, error=error, traceback=traceback, finished_at=now
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
    return True


def _run_succeed(*, run_id: RunId, attempt: int, result: Any, now: datetime) -> bool:
    """The common case: nothing to decide. The run, its attempt's record and its event are
    written together, and only if the run's guarded update matched."""
    states = sorted(EXECUTING_STATES)
    record_attempt = (
        f"INSERT INTO {_table(RunAttempt)} "  # noqa: S608
        "(run_id, number, worker, started_at, finished_at, outcome, error, traceback) "
        "SELECT id, attempt, worker, started_at, finished_at, state, '', '' FROM {run}"
    )
    # The job id (0 here) is read from the run row by the event's insert.
    event = run_event(RunState.SUCCEEDED, run_id=run_id, job_id=0, attempt=attempt, time=now)
    ended = _run_update_and_insert(
        run_id=run_id,
        update=(
            "SET state = %s, result = %s, error = '', traceback = '', finished_at = %s "
            f"WHERE id = %s AND attempt = %s AND state IN {_placeholders(states)}"
        ),
        params=[
            RunState.SUCCEEDED.value,
            Run._meta.get_field("result").get_db_prep_save(result, connection),
            _datetime(now),
            _run_id(run_id),
            attempt,
            *states,
        ],
        inserts=[(record_attempt, []), *_event_inserts(event)],
        returning="job_id",
    )
    if ended is None:
        logger.info("Run %s attempt %s already ended; success ignored", run_id, attempt)
        return False
    event.job_id = ended[0]
    events_announce([event])
    return True


def _run_update_and_insert(
    *,
    run_id: RunId,
    update: str,
    params: list[Any],
    inserts: list[tuple[str, list[Any]]],
    returning: str,
) -> tuple[Any, ...] | None:
    """UPDATE one run (`update`: its SET and WHERE clauses) and, only if that matched, run each
    `INSERT … SELECT … FROM {run}` of `inserts` over the updated row; return the `returning`
    columns of the run, or None. On PostgreSQL this is one prepared statement (data-modifying
    WITH), the hot path's cost being mostly round trips and planning; elsewhere (SQLite) one
    transaction."""
    runs = _table(Run)
    # Only table names and placeholders are formatted into these statements; values are parameters.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            steps = [f"run AS (UPDATE {runs} {update} RETURNING *)"]
            steps += [f"step{n} AS ({sql.format(run='run')})" for n, (sql, _) in enumerate(inserts)]
            execute_prepared(
                cursor,
                f"WITH {', '.join(steps)} SELECT {returning} FROM run",  # noqa: S608
                params + [value for _, insert_params in inserts for value in insert_params],
            )
            return cursor.fetchone()
        with transaction.atomic():
            cursor.execute(f"UPDATE {runs} {update} RETURNING {returning}", params)
            row = cursor.fetchone()
            if row is not None:
                for sql, insert_params in inserts:
                    cursor.execute(
                        sql.format(run=f"{runs} WHERE id = %s"), [*insert_params, _run_id(run_id)]
                    )
        return row


def _event_inserts(event: OutboxEvent) -> list[tuple[str, list[Any]]]:
    return [event_insert_from_run(event)] if events_enabled() else []


def _table(model: type[Run | RunAttempt]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _placeholders(values: Iterable[Any]) -> str:
    return "(" + ", ".join("%s" for _ in values) + ")"


def _run_id(run_id: RunId) -> Any:
    return Run._meta.get_field("id").get_db_prep_value(run_id, connection)


def _datetime(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def run_attempt_lost(*, run_id: RunId, attempt: int, reason: str) -> bool:
    return run_attempt_end(run_id=run_id, attempt=attempt, outcome=RunState.LOST, error=reason)


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
