from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from apps.accounts.selectors import visible_to
from apps.jobs.health import (
    FINISHED_STATES,
    HealthPolicy,
    JobHealth,
    JobStatus,
    ScheduleFacts,
    SkippedSpan,
    job_health,
    judged_due_time,
    next_fire_at,
    schedule_health,
)
from apps.jobs.models import Job
from apps.runs.models import Run
from apps.runs.states import TERMINAL_STATES, RunState
from apps.schedules.models import (
    RECURRENCE_FIELDS,
    Schedule,
    SkippedFire,
    SkipReason,
    schedule_recurrence,
)


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
    health: JobHealth | None = None,
    now: datetime | None = None,
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
    if health:
        statuses = jobs_health(jobs=jobs, now=now or timezone.now())
        matching = [job_id for job_id, status in statuses.items() if status.health == health]
        jobs = jobs.filter(id__in=matching)
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


def jobs_health(*, jobs: QuerySet[Job], now: datetime) -> dict[int, JobStatus]:
    """The health of each of `jobs` at `now` (apps.jobs.health decides), in two queries whatever
    their number, a third when a schedule's judged due time has no answer."""
    policy = HealthPolicy(
        grace_seconds=settings.DTS_JOB_HEALTH_GRACE_SECONDS,
        failing_runs=settings.DTS_JOB_FAILING_RUNS,
        runs_kept_since=now - timedelta(days=settings.DTS_RUN_RETENTION_DAYS)
        if settings.DTS_RUN_RETENTION_DAYS
        else None,
    )
    job_ids = jobs.order_by().values("id")
    job_rows = _job_run_facts(job_ids, failing_runs=policy.failing_runs)
    schedules = _schedule_facts(job_ids)
    skipped = _skipped_spans(schedules, now=now, grace_seconds=policy.grace_seconds)
    statuses = {}
    for row in job_rows:
        facts = schedules.get(row["id"], {})
        verdicts = [
            schedule_health(each, now=now, policy=policy, skipped=skipped.get(schedule_id, ()))
            for schedule_id, each in facts.items()
        ]
        statuses[row["id"]] = JobStatus(
            health=job_health(
                enabled=row["enabled"],
                schedules=verdicts,
                recent_outcomes=row["recent_outcomes"],
                failing_runs=policy.failing_runs,
            ),
            last_success_at=row["last_success_at"],
            next_fire_at=next_fire_at(enabled=row["enabled"], schedules=facts.values()),
        )
    return statuses


def _job_run_facts(job_ids: QuerySet[Any], *, failing_runs: int) -> list[dict[str, Any]]:
    """Each job's switch, when its latest succeeded run ended, and the states of its latest
    `failing_runs` finished runs, newest first (`recent_outcomes`): one query, each a walk down the
    index of the job's runs by creation."""
    runs = Run.objects.filter(job_id=OuterRef("id")).order_by("-created_at")
    finished = runs.filter(state__in=FINISHED_STATES).values("state")
    succeeded = runs.filter(state=RunState.SUCCEEDED).values("finished_at")[:1]
    rows = Job.objects.filter(id__in=job_ids).order_by().values("id", "enabled")
    if connection.vendor == "postgresql":
        # One walk for the N states rather than one per state.
        outcomes = rows.annotate(
            last_success_at=Subquery(succeeded),
            recent_outcomes=ArraySubquery(finished[:failing_runs]),
        )
        return list(outcomes)
    positions = {
        f"outcome_{index}": Subquery(finished[index : index + 1]) for index in range(failing_runs)
    }
    read = list(rows.annotate(last_success_at=Subquery(succeeded), **positions))
    for row in read:
        states = (row.pop(position) for position in positions)
        row["recent_outcomes"] = [state for state in states if state is not None]
    return read


def _schedule_facts(job_ids: QuerySet[Any]) -> dict[int, dict[int, ScheduleFacts]]:
    """Each job's schedules (by id), with the latest due time of each whose run has started or
    ended: one query, each a walk down the schedule's unique index of runs by due time."""
    answered = (
        Run.objects.filter(schedule_id=OuterRef("id"))
        .filter(Q(started_at__isnull=False) | Q(state__in=TERMINAL_STATES))
        .order_by("-scheduled_for")
        .values("scheduled_for")[:1]
    )
    rows = (
        Schedule.objects.filter(job_id__in=job_ids)
        .order_by()
        .values(*SCHEDULE_FIELDS)
        .annotate(answered_for=Subquery(answered))
    )
    facts: dict[int, dict[int, ScheduleFacts]] = {}
    for row in rows:
        facts.setdefault(row["job_id"], {})[row["id"]] = ScheduleFacts(
            recurrence=schedule_recurrence(**{field: row[field] for field in RECURRENCE_FIELDS}),
            jitter_seconds=row["jitter_seconds"],
            active=row["enabled"] and not row["paused"],
            expected_since=row["updated_at"],
            last_fired_for=row["last_fired_for"],
            answered_for=row["answered_for"],
            next_fire_at=row["next_fire_at"],
        )
    return facts


SCHEDULE_FIELDS = (
    "id",
    "job_id",
    *RECURRENCE_FIELDS,
    "jitter_seconds",
    "enabled",
    "paused",
    "updated_at",
    "last_fired_for",
    "next_fire_at",
)


def _skipped_spans(
    schedules: dict[int, dict[int, ScheduleFacts]], *, now: datetime, grace_seconds: int
) -> dict[int, list[SkippedSpan]]:
    """The misfire and overlap records that may cover the judged due time of each schedule whose
    judged due time has no answer: one query, none when every schedule is answered."""
    unanswered: dict[int, datetime] = {}
    for facts in schedules.values():
        for schedule_id, each in facts.items():
            due = judged_due_time(each, now=now, grace_seconds=grace_seconds)
            if due is not None and (each.answered_for is None or each.answered_for < due):
                unanswered[schedule_id] = due
    if not unanswered:
        return {}
    records = SkippedFire.objects.filter(
        schedule_id__in=list(unanswered),
        reason__in=[SkipReason.MISFIRE, SkipReason.OVERLAP],
        last_scheduled_for__gte=min(unanswered.values()),
    ).values_list("schedule_id", "first_scheduled_for", "last_scheduled_for")
    spans: dict[int, list[SkippedSpan]] = {}
    for schedule_id, first, last in records:
        spans.setdefault(schedule_id, []).append(SkippedSpan(first=first, last=last))
    return spans
