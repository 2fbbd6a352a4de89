"""A job's health, the dead man's switch of its schedules: pure, no database.

The selector (`apps.jobs.selectors.jobs_health`) reads what is stored and asks `job_health`; the
definitions are in docs/metrics.md, "Job health". In short, for each active schedule the *judged*
due time is its latest expected fire time whose grace has passed; a due time is *answered* once a
run fired for it has started (or ended without starting: refused, cancelled while waiting):

- `ok`: the judged due time, or a later one, is answered (or nothing is judged yet);
- `late`: it is not answered;
- `missed`: it is not answered and the scheduler recorded it skipped (misfire, overlap), or the
  expected due time before it is not answered either;
- `failing`: the job's latest finished runs (N, or all of them if fewer) all failed;
- `paused`: the job is disabled, or it has schedules and none is active.

Precedence: paused, then missed, late, failing, ok. A job without schedules is ok or failing.
"""

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import models

from apps.runs.states import RunState
from apps.schedules.timing import Recurrence, cached_next_after


class JobHealth(models.TextChoices):
    OK = "ok", "OK"
    LATE = "late", "Late"
    MISSED = "missed", "Missed"
    FAILING = "failing", "Failing"
    PAUSED = "paused", "Paused"


# Finished runs are those that ended one way or the other; a cancelled run is neither.
FINISHED_STATES = frozenset(
    {RunState.SUCCEEDED, RunState.FAILED, RunState.TIMED_OUT, RunState.LOST}
)
FAILED_STATES = FINISHED_STATES - {RunState.SUCCEEDED}


@dataclass(frozen=True, slots=True)
class JobStatus:
    """A job's health, with the two times an operator asks about next."""

    health: JobHealth
    # When its latest succeeded run ended; None if none is kept.
    last_success_at: datetime | None
    # When its active schedules fire next; None if they do not (or it is paused).
    next_fire_at: datetime | None


@dataclass(frozen=True, slots=True)
class ScheduleFacts:
    """What health needs to know of one schedule, as stored."""

    recurrence: Recurrence
    jitter_seconds: int
    # Enabled and not paused (its job's own switch is the job's).
    active: bool
    # Due times at or before this are not expected: the schedule was created, changed, resumed or
    # re-enabled then, and moved on from that instant (its updated_at).
    expected_since: datetime
    # The latest due time the scheduler fired (from the schedule's row).
    last_fired_for: datetime | None
    # The latest due time of the schedule whose run has started or ended, if any is kept.
    answered_for: datetime | None
    # When to fire next (with its jitter); None when nothing is left to fire.
    next_fire_at: datetime | None


@dataclass(frozen=True, slots=True)
class SkippedSpan:
    """Due times [first, last] the scheduler recorded as skipped for a misfire or an overlap."""

    first: datetime
    last: datetime


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    # A due time whose run has not started this long after it (plus the schedule's jitter) is late.
    grace_seconds: int
    # A job whose latest this many finished runs all failed is failing.
    failing_runs: int
    # Finished runs that ended before this have been removed (DTS_RUN_RETENTION_DAYS); None: kept.
    runs_kept_since: datetime | None = None


def judged_due_time(facts: ScheduleFacts, *, now: datetime, grace_seconds: int) -> datetime | None:
    """The schedule's latest expected due time whose grace (plus its jitter) has passed: the one
    health judges. None when there is none yet (or the schedule is not active)."""
    if not facts.active:
        return None
    cutoff = now - timedelta(seconds=grace_seconds + facts.jitter_seconds)
    due = _cached_latest_at_or_before(facts.recurrence, cutoff)
    if due is None or due <= facts.expected_since:
        return None
    return due


def schedule_health(
    facts: ScheduleFacts,
    *,
    now: datetime,
    policy: HealthPolicy,
    skipped: Iterable[SkippedSpan] = (),
) -> JobHealth:
    """One schedule's health: paused, ok, late or missed (module docstring); `skipped`: its
    misfire and overlap records covering recent due times."""
    if not facts.active:
        return JobHealth.PAUSED
    due = judged_due_time(facts, now=now, grace_seconds=policy.grace_seconds)
    if due is None:
        return JobHealth.OK
    answered = _answered_for(facts, policy)
    if answered is not None and answered >= due:
        return JobHealth.OK
    if any(span.first <= due <= span.last for span in skipped):
        return JobHealth.MISSED
    # The first expected due time after the last answered one: before the judged one, it is a
    # due time whose window closed (the next one came and passed its grace) without a run.
    since = facts.expected_since if answered is None else max(answered, facts.expected_since)
    first_unanswered = cached_next_after(facts.recurrence, since)
    if first_unanswered is not None and first_unanswered < due:
        return JobHealth.MISSED
    return JobHealth.LATE


def job_health(
    *,
    enabled: bool,
    schedules: Sequence[JobHealth],
    recent_outcomes: Sequence[str],
    failing_runs: int,
) -> JobHealth:
    """A job's health from its switch, its schedules' health (schedule_health, one per schedule)
    and the states of its latest finished runs, newest first (at least `failing_runs` of them
    when it has that many)."""
    if not enabled or (schedules and all(health == JobHealth.PAUSED for health in schedules)):
        return JobHealth.PAUSED
    for health in (JobHealth.MISSED, JobHealth.LATE):  # the worst schedule wins
        if health in schedules:
            return health
    latest = list(recent_outcomes[:failing_runs])
    if latest and all(state in FAILED_STATES for state in latest):
        return JobHealth.FAILING
    return JobHealth.OK


def next_fire_at(*, enabled: bool, schedules: Iterable[ScheduleFacts]) -> datetime | None:
    """When the job's active schedules fire next (None: they do not, or the job is disabled)."""
    if not enabled:
        return None
    times = [facts.next_fire_at for facts in schedules if facts.active and facts.next_fire_at]
    return min(times, default=None)


def _answered_for(facts: ScheduleFacts, policy: HealthPolicy) -> datetime | None:
    """The latest answered due time, counting a fired one whose run may have been removed by the
    retention (a schedule that fires less often than runs are kept)."""
    answered = facts.answered_for
    fired = facts.last_fired_for
    kept_since = policy.runs_kept_since
    if fired is not None and kept_since is not None and fired < kept_since:
        answered = fired if answered is None else max(answered, fired)
    return answered


@functools.lru_cache(maxsize=4096)
def _cached_latest_at_or_before(recurrence: Recurrence, instant: datetime) -> datetime | None:
    # Many schedules share a recurrence and are judged at one instant in a pass.
    return recurrence.latest_at_or_before(instant)
