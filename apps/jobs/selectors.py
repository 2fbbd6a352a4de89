from collections.abc import Sequence

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from apps.accounts.selectors import visible_to
from apps.jobs.models import Job


def jobs_visible(*, user: User | AnonymousUser) -> QuerySet[Job]:
    """The jobs of the user's teams (every job for a superuser)."""
    jobs = Job.objects.select_related("team").prefetch_related("tags")
    return visible_to(jobs, user=user, memberships="team__memberships")


def jobs_list(
    *,
    user: User | AnonymousUser,
    team: str | None = None,
    tag: str | None = None,
    task_type: str | None = None,
    enabled: bool | None = None,
    search: str | None = None,
) -> QuerySet[Job]:
    jobs = jobs_visible(user=user)
    if team:
        jobs = jobs.filter(team__name=team)
    if tag:
        jobs = jobs.filter(tags__name=tag)
    if task_type:
        jobs = jobs.filter(task_type=task_type)
    if enabled is not None:
        jobs = jobs.filter(enabled=enabled)
    if search:
        jobs = jobs.filter(name__icontains=search)
    return jobs.order_by("name")


def job_tag_names(*, job_ids: Sequence[int]) -> dict[int, list[str]]:
    """The names of each job's tags, in order; a job without tags is absent."""
    names: dict[int, list[str]] = {}
    pairs = Job.tags.through.objects.filter(job_id__in=job_ids).order_by("tag__name")
    for job_id, name in pairs.values_list("job_id", "tag__name"):
        names.setdefault(job_id, []).append(name)
    return names
