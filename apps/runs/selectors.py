from datetime import datetime
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, QuerySet

from apps.accounts.selectors import user_teams
from apps.runs.models import Run
from apps.runs.states import RunState


def runs_visible(*, user: User | AnonymousUser) -> QuerySet[Run]:
    """The runs of the jobs of the user's teams (every run for a superuser)."""
    runs = Run.objects.select_related("job")
    if user.is_authenticated and user.is_superuser:
        return runs
    return runs.filter(job__team__in=user_teams(user=user))


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
    runs = runs_visible(user=user)
    if job_id is not None:
        runs = runs.filter(job_id=job_id)
    if state:
        runs = runs.filter(state=state)
    if trigger:
        runs = runs.filter(trigger=trigger)
    if created_after is not None:
        runs = runs.filter(created_at__gte=created_after)
    if created_before is not None:
        runs = runs.filter(created_at__lt=created_before)
    return runs.order_by("-created_at")


def run_counts(**filters: Any) -> dict[str, int]:
    """The number of runs in each state (every state, 0 included) among `runs_list(**filters)`."""
    counted = dict(runs_list(**filters).order_by().values_list("state").annotate(count=Count("id")))
    return {state: counted.get(state, 0) for state in RunState.values}
