from datetime import datetime
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, QuerySet

from apps.accounts.selectors import visible_to
from apps.runs.models import Run
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
