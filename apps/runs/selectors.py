from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import connection
from django.db.models import Count, F, Min, QuerySet, Window
from django.db.models.functions import RowNumber, TruncMinute

from apps.accounts.selectors import visible_to
from apps.jobs.selectors import job_queues_visible, sees_every_queue
from apps.runs.models import Run, Worker
from apps.runs.states import TERMINAL_STATES, RunState


def runs_visible(*, user: User | AnonymousUser) -> QuerySet[Run]:
    """The runs of the jobs of the user's teams (every run for a superuser)."""
    runs = Run.objects.select_related("job")
    return visible_to(runs, user=user, memberships="job__team__memberships")


def runs_list(
    *,
    user: User | AnonymousUser,
    job_id: int | None = None,
    state: str | None = None,
    trigger: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> QuerySet[Run]:
    """Newest first."""
    conditions = {
        "job_id": job_id,
        "state": state or None,
        "trigger": trigger or None,
        "created_at__gte": created_after,
        "created_at__lt": created_before,
    }
    # One filter() of them all: each call copies the query, which the run list builds per request.
    given = {lookup: value for lookup, value in conditions.items() if value is not None}
    return runs_visible(user=user).filter(**given).order_by("-created_at")


def run_counts(**filters: Any) -> dict[str, int]:
    """The number of runs in each state (every state, 0 included) among `runs_list(**filters)`."""
    counted = dict(runs_list(**filters).order_by().values_list("state").annotate(count=Count("id")))
    return {state: counted.get(state, 0) for state in RunState.values}


# The outcomes a chart of runs shows: the terminal states, in the state machine's order.
OUTCOMES = [state for state in RunState.values if state in TERMINAL_STATES]
MAX_CHART_MINUTES = 60


@dataclass(frozen=True, slots=True)
class RunsPerMinute:
    """How many runs ended in each minute from `start`, by outcome: `counts[outcome][i]` is the
    number that ended in [start + i minutes, start + i + 1 minutes)."""

    start: datetime
    minutes: int
    counts: dict[str, list[int]]


def runs_per_minute(
    *,
    user: User | AnonymousUser,
    now: datetime,
    minutes: int = MAX_CHART_MINUTES,
    job_id: int | None = None,
) -> RunsPerMinute:
    """The runs the user may see that ended in each of the last `minutes` whole minutes (the
    current one, so far, last), by outcome: one query, a range of the index of runs by end time
    (run_finished_idx), at most `minutes` x 5 rows back."""
    if not 1 <= minutes <= MAX_CHART_MINUTES:
        raise ValueError(f"minutes must be 1-{MAX_CHART_MINUTES}, not {minutes}")
    end = now.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(minutes=minutes)
    runs = runs_visible(user=user).filter(finished_at__gte=start, finished_at__lt=end)
    if job_id is not None:
        runs = runs.filter(job_id=job_id)
    rows = (
        runs.order_by()
        .values("state", minute=TruncMinute("finished_at", tzinfo=UTC))
        .annotate(count=Count("id"))
        .values_list("minute", "state", "count")
    )
    counts = {outcome: [0] * minutes for outcome in OUTCOMES}
    for minute, state, count in rows:
        index = int((minute - start).total_seconds()) // 60
        if state in counts and 0 <= index < minutes:
            counts[state][index] += count
    return RunsPerMinute(start=start, minutes=minutes, counts=counts)


MAX_LATEST_RUNS = 20


def runs_latest_per_job(*, job_ids: Sequence[int], count: int) -> dict[int, list[dict[str, Any]]]:
    """The latest `count` runs of each job (by creation, newest first) as `id`, `state` and
    `created_at`; a job without runs is absent. One query whatever the number of jobs: on
    PostgreSQL a lateral join, a walk of `count` entries down each job's part of the index of
    runs by creation (run_job_created_idx); elsewhere (SQLite, `make dev`) a window function,
    which numbers every run of the jobs."""
    if not 1 <= count <= MAX_LATEST_RUNS:
        raise ValueError(f"count must be 1-{MAX_LATEST_RUNS}, not {count}")
    if not job_ids:
        return {}
    if connection.vendor == "postgresql":
        rows = _latest_runs_lateral(job_ids=job_ids, count=count)
    else:
        numbered = Window(RowNumber(), partition_by=F("job_id"), order_by=F("created_at").desc())
        rows = list(
            Run.objects.filter(job_id__in=list(job_ids))
            .annotate(position=numbered)
            .filter(position__lte=count)
            .order_by("job_id", "-created_at")
            .values_list("job_id", "id", "state", "created_at")
        )
    latest: dict[int, list[dict[str, Any]]] = {}
    for job_id, run_id, state, created_at in rows:
        latest.setdefault(job_id, []).append(
            {"id": run_id, "state": state, "created_at": created_at}
        )
    return latest


def _latest_runs_lateral(*, job_ids: Sequence[int], count: int) -> list[tuple[Any, ...]]:
    table = Run._meta.db_table
    query = (
        "SELECT latest.job_id, latest.id, latest.state, latest.created_at "  # noqa: S608
        "FROM unnest(%s::bigint[]) WITH ORDINALITY AS job(id, position) "
        f"CROSS JOIN LATERAL (SELECT id, job_id, state, created_at FROM {table} "
        "WHERE job_id = job.id ORDER BY created_at DESC LIMIT %s) AS latest "
        "ORDER BY job.position, latest.created_at DESC"
    )
    with connection.cursor() as cursor:
        cursor.execute(query, [list(job_ids), count])
        return cursor.fetchall()


def run_ids_visible(*, user: User | AnonymousUser, run_ids: Iterable[str]) -> set[str]:
    """Those of `run_ids` that name runs the user may see."""
    runs = runs_visible(user=user).filter(id__in=list(run_ids))
    return {str(run_id) for run_id in runs.values_list("id", flat=True)}


def workers_visible(*, user: User | AnonymousUser) -> list[Worker]:
    """The workers consuming a queue of the user's teams' jobs (every worker for staff and
    superusers: sees_every_queue), by hostname."""
    workers = Worker.objects.order_by("hostname")
    if sees_every_queue(user=user):
        return list(workers)
    # A worker's queues are a JSON list, which SQLite (make dev) cannot intersect in a query.
    queues = set(job_queues_visible(user=user))
    return [worker for worker in workers if queues.intersection(worker.queues)]


def queues_visible(*, user: User | AnonymousUser) -> list[str]:
    """The queues of the settings (DTS_QUEUES, in their order) that the user may see."""
    visible = set(job_queues_visible(user=user))
    return [name for name in settings.DTS_QUEUES if name in visible]


def runs_oldest_queued_at(*, queues: Iterable[str]) -> dict[str, datetime]:
    """When the oldest run still queued in each of `queues` was queued (queues with none are left
    out)."""
    oldest = (
        Run.objects.filter(state=RunState.QUEUED, queue__in=list(queues), queued_at__isnull=False)
        .values("queue")
        .annotate(oldest=Min("queued_at"))
        .order_by()
    )
    return {row["queue"]: row["oldest"] for row in oldest}
