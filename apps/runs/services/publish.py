"""Sending runs to the broker: only ever after the commit that queued them, through one door."""

from collections.abc import Callable
from datetime import datetime
from functools import partial

from django.db import transaction

from apps.events.models import OutboxEvent
from apps.events.outbox import run_event
from apps.runs.models import Run, RunTrigger
from apps.runs.states import RunState
from apps.tasktypes.registry import task_type_get
from dispatch.messages import ExecuteRun, execute_run_send


def runs_publish_on_commit(runs: list[Run], *, published: Callable[[], None] | None = None) -> None:
    """Publish `runs` once the current transaction commits; at once outside a transaction (the
    reaper's case). In a transaction a failed send does not raise: the runs are committed whatever
    the broker says, and one whose message never reached the broker is published again by the
    reaper (apps.runs.services.maintenance.runs_republish_missing). Outside one it raises, so the
    scheduler's sweep sees the broker's outage. `published` is called once they all are sent."""
    in_transaction = transaction.get_connection().in_atomic_block
    transaction.on_commit(
        partial(runs_publish, runs=runs, published=published), robust=in_transaction
    )


def runs_publish(*, runs: list[Run], published: Callable[[], None] | None = None) -> None:
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
    if published is not None:
        published()


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
