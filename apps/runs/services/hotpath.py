"""The worker's hot path in SQL: a run's start and its success, each one statement.

On PostgreSQL each is one data-modifying `WITH` (prepared): the run's guarded update and, only if
it matched, the inserts over the updated row (the success's attempt record, the event). Elsewhere
(SQLite) the same statements in one transaction. Raw SQL because the ORM's cost per statement was
most of a no-op run's (bench/execution.py). The guards' sources come from apps.runs.states.
"""

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.utils.dateparse import parse_datetime

from apps.core.db import execute_prepared
from apps.events.models import OutboxEvent
from apps.events.outbox import event_insert_from_run, events_enabled
from apps.runs.models import Run, RunAttempt, RunId
from apps.runs.states import RunState, sources_of


def run_start_write(
    *, run_id: RunId, attempt: int, worker: str, now: datetime, event: OutboxEvent
) -> tuple[Any, ...] | None:
    """Move attempt `attempt` of the run to RUNNING and insert its `event`; return the run's
    (job_id, task_type, args as JSON text, queue, queued_at), or None when the guard did not
    match (queued_at as the database returns it: see datetime_from_row)."""
    states = sorted(sources_of(RunState.RUNNING))
    return _run_update_and_insert(
        run_id=run_id,
        update=(
            "SET state = %s, worker = %s, started_at = %s, next_attempt_at = NULL "
            f"WHERE id = %s AND attempt = %s AND state IN {_placeholders(states)}"
        ),
        params=[RunState.RUNNING.value, worker, _datetime(now), _run_id(run_id), attempt, *states],
        inserts=_event_inserts(event),
        returning="job_id, task_type, args, queue, queued_at",
    )


def run_succeed_write(
    *, run_id: RunId, attempt: int, result: Any, now: datetime, event: OutboxEvent
) -> tuple[Any, ...] | None:
    """Move attempt `attempt` of the run to SUCCEEDED with its `result`, record the attempt and
    insert its `event`; return the run's (job_id, queue, task_type, started_at, workflow_run_id),
    or None when the guard did not match (started_at as the database returns it: see
    datetime_from_row)."""
    states = sorted(sources_of(RunState.SUCCEEDED))
    record_attempt = (
        f"INSERT INTO {_table(RunAttempt)} "  # noqa: S608
        "(run_id, number, worker, started_at, finished_at, outcome, error, traceback) "
        "SELECT id, attempt, worker, started_at, finished_at, state, '', '' FROM {run}"
    )
    return _run_update_and_insert(
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
        returning="job_id, queue, task_type, started_at, workflow_run_id",
    )


def datetime_from_row(value: Any) -> datetime | None:
    """A timestamp column read by these raw statements: PostgreSQL's driver gives an aware
    datetime; SQLite may give its text, naive and in UTC as Django stores it."""
    if value is None or (isinstance(value, datetime) and value.tzinfo is not None):
        return value
    parsed = value if isinstance(value, datetime) else parse_datetime(value)
    if parsed is None:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


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
