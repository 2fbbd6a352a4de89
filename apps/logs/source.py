"""What the indexer reads from PostgreSQL for a batch of events: the log lines of the ranges that
`dts.run.logged` events name, and the current rows of the runs that changed, each with its job and
team (docs/logs.md, "Where the indexer reads from")."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from apps.jobs.models import Job
from apps.runs.models import Run, RunAttempt, RunLogLine

# A line's index is of its day, as apps.logs.documents.LINES names it, in PostgreSQL's to_char.
LINES_DAY_SQL = "YYYY.MM.DD"
# What a run's document copies from its row as it is.
RUN_COPIED = (
    *("task_type", "queue", "trigger", "state", "attempt", "worker", "error", "traceback"),
    *("created_at", "queued_at", "started_at", "finished_at"),
)
RUN_FIELDS = ("id", "job_id", "job__name", "job__team_id", *RUN_COPIED)


@dataclass(frozen=True)
class LineRange:
    """Lines first..last (sequences, both included) of a run's log."""

    run_id: uuid.UUID
    first: int
    last: int


def lines_read(ranges: list[LineRange]) -> list[tuple[str, str, str]]:
    """The lines of `ranges` as (the day of their index, document id, document as JSON text),
    each with its run's job, team, task type, queue and the worker of its attempt. PostgreSQL
    writes the JSON: building and encoding a dictionary per line in Python cost more than the
    rest of the indexer's work on the line (bench/logs.py). Lines of runs deleted since are not
    there."""
    if not ranges:
        return []
    line, run, job, attempt = (
        connection.ops.quote_name(model._meta.db_table)
        for model in (RunLogLine, Run, Job, RunAttempt)
    )
    sql = f"""
        SELECT to_char(l.logged_at AT TIME ZONE 'UTC', %s),
               l.run_id || ':' || l.attempt || ':' || l.sequence,
               json_build_object(
                   'run', l.run_id, 'attempt', l.attempt, 'sequence', l.sequence,
                   'logged_at', l.logged_at, 'level', l.level, 'logger', l.logger,
                   'message', l.message, 'job', r.job_id, 'job_name', j.name, 'team', j.team_id,
                   'task_type', r.task_type, 'queue', r.queue,
                   'worker', COALESCE(a.worker, r.worker)
               )::text
        FROM unnest(%s::uuid[], %s::integer[], %s::integer[]) AS w(run_id, first, last)
        JOIN {line} l ON l.run_id = w.run_id AND l.sequence BETWEEN w.first AND w.last
        JOIN {run} r ON r.id = l.run_id
        JOIN {job} j ON j.id = r.job_id
        LEFT JOIN {attempt} a ON a.run_id = l.run_id AND a.number = l.attempt
    """  # noqa: S608 (table names from the models; values are parameters)
    params: list[Any] = [
        LINES_DAY_SQL,
        [str(one.run_id) for one in ranges],
        [one.first for one in ranges],
        [one.last for one in ranges],
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def runs_read(run_ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    """The current rows of the runs of `run_ids` (those still there), with their job's name and
    team."""
    return list(Run.objects.filter(id__in=run_ids).values(*RUN_FIELDS))


def run_changed_at(row: dict[str, Any]) -> datetime:
    """The time of the run's last recorded change: its document's version (docs/logs.md)."""
    times = (row["created_at"], row["queued_at"], row["started_at"], row["finished_at"])
    return max(time for time in times if time is not None)
