from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, Min, QuerySet

from apps.accounts.selectors import visible_to
from apps.jobs.selectors import job_queues_visible, sees_every_queue
from apps.runs.models import Run, Worker
from apps.runs.states import RunState


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
