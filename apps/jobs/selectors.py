from collections.abc import Sequence

from django.conf import settings
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
    name: str | None = None,
    tag: str | None = None,
    task_type: str | None = None,
    enabled: bool | None = None,
    search: str | None = None,
) -> QuerySet[Job]:
    jobs = jobs_visible(user=user)
    if team:
        jobs = jobs.filter(team__name=team)
    if name:
        jobs = jobs.filter(name=name)  # one job per team at most
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


def sees_every_queue(*, user: User | AnonymousUser) -> bool:
    """Staff and superusers run the platform: every worker and queue is theirs to watch."""
    return user.is_authenticated and (user.is_staff or user.is_superuser)


def job_queues_visible(*, user: User | AnonymousUser) -> list[str]:
    """The queues the user may see, in order: those their teams' jobs use, or every queue
    (sees_every_queue)."""
    if sees_every_queue(user=user):
        return sorted(settings.DTS_QUEUES)
    used = jobs_visible(user=user).prefetch_related(None).values_list("queue", flat=True)
    return sorted(set(used))
