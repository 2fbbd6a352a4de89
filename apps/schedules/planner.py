"""What a schedule fires now, what it skips and why, and when it fires next: pure, no database.

The scheduler (firing.py) asks `fire_plan` for each schedule it claimed, then writes the answer:
the runs, the skipped-fire records and the advanced next fire. The services that move a schedule
on from now (create, edit, resume, re-enable) ask `next_fire` and `skipped_while_inactive`.
The overlap policy is not decided here: it depends on the job's runs in the database (firing.py).
"""

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from apps.schedules.models import MisfirePolicy, ScheduleTiming, SkipReason
from apps.schedules.timing import Recurrence, cached_fires_between, cached_next_after

# Counting the fires a long pause skipped stops here; the record then says "at least".
SKIPPED_COUNT_BOUND = 10_000

# Draws a jitter: a whole number of seconds from 0 to its argument minus one (secrets.randbelow).
JitterDraw = Callable[[int], int]


@dataclass(frozen=True, slots=True)
class SkippedRange:
    """The fire times in [first, last] that are not fired, and why."""

    reason: SkipReason
    first: datetime
    last: datetime


@dataclass(frozen=True, slots=True)
class SkippedCount:
    """How many fire times a skipped range holds, counted up to SKIPPED_COUNT_BOUND."""

    count: int
    last: datetime  # the last fire time counted
    is_lower_bound: bool


@dataclass(frozen=True, slots=True)
class NextFire:
    """The next nominal fire time, and when to fire it (the same, plus the schedule's jitter).
    Both are None once the schedule has nothing left to fire (a once-at fired, end_at passed)."""

    scheduled_for: datetime | None
    fire_at: datetime | None


@dataclass(frozen=True, slots=True)
class FirePlan:
    """A tick's answer for one schedule: the nominal times to fire now (in order), the missed
    times not fired (with why), and the schedule's next fire after now."""

    fire_times: tuple[datetime, ...]
    skipped: tuple[SkippedRange, ...]
    next_fire: NextFire


def fire_plan(
    schedule: ScheduleTiming,
    *,
    now: datetime,
    grace_seconds: int,
    draw_jitter: JitterDraw = secrets.randbelow,
) -> FirePlan:
    """Which of the schedule's times from its `next_scheduled_for` to `now` fire, by its misfire
    policy, which are skipped, and its next fire after `now`.

    A fire later than `grace_seconds` plus the schedule's jitter is missed (no scheduler ran at
    its time): `skip` fires none of the missed times, `run_once` the latest, `catch_up` those in
    the catch-up window, at most the latest `catch_up_max_fires`. The rest are one skipped range.
    """
    recurrence = schedule.recurrence()
    fire_times, skipped = _due_fires(schedule, recurrence, now=now, grace_seconds=grace_seconds)
    return FirePlan(
        fire_times=tuple(fire_times),
        skipped=skipped,
        next_fire=_next_fire(recurrence, schedule.jitter_seconds, after=now, draw=draw_jitter),
    )


def next_fire(
    schedule: ScheduleTiming, *, after: datetime, draw_jitter: JitterDraw = secrets.randbelow
) -> NextFire:
    """The schedule's next nominal fire time strictly after `after`, and when to fire it."""
    return _next_fire(schedule.recurrence(), schedule.jitter_seconds, after=after, draw=draw_jitter)


def skipped_while_inactive(
    schedule: ScheduleTiming, *, reason: SkipReason, now: datetime
) -> SkippedRange | None:
    """The fire times that passed while the schedule was paused or disabled, up to `now`: they are
    skipped, not fired (the misfire policy is for scheduler outages only)."""
    first = schedule.next_scheduled_for
    if first is None or first > now:
        return None
    return SkippedRange(reason=reason, first=first, last=now)


def skipped_fires_count(
    recurrence: Recurrence, *, first: datetime, last: datetime
) -> SkippedCount | None:
    """How many fire times [first, last] holds (None when it holds none); counting stops at
    SKIPPED_COUNT_BOUND, so that a pause of years costs no more than that."""
    count = 0
    last_counted = first
    for fire in recurrence.fires_between(first, last):
        count += 1
        last_counted = fire
        if count == SKIPPED_COUNT_BOUND:
            break
    if count == 0:
        return None
    return SkippedCount(count=count, last=last_counted, is_lower_bound=count == SKIPPED_COUNT_BOUND)


def _due_fires(
    schedule: ScheduleTiming, recurrence: Recurrence, *, now: datetime, grace_seconds: int
) -> tuple[list[datetime], tuple[SkippedRange, ...]]:
    first = schedule.next_scheduled_for
    if first is None:
        return [], ()
    # A fire is missed, not merely late, once it is later than the grace (plus its own jitter).
    missed_before = now - timedelta(seconds=grace_seconds + schedule.jitter_seconds)
    on_time = cached_fires_between(recurrence, max(first, missed_before), now)
    if first >= missed_before:
        return on_time, ()
    latest_missed = recurrence.latest_at_or_before(missed_before - timedelta(microseconds=1))
    if latest_missed is None or latest_missed < first:
        return on_time, ()
    fired_missed: list[datetime] = []
    if schedule.misfire_policy == MisfirePolicy.RUN_ONCE:
        fired_missed = [latest_missed]
    elif schedule.misfire_policy == MisfirePolicy.CATCH_UP:
        window_start = max(first, now - timedelta(seconds=schedule.catch_up_window_seconds))
        in_window = cached_fires_between(recurrence, window_start, latest_missed)
        fired_missed = in_window[-schedule.catch_up_max_fires :]
    skipped_until = fired_missed[0] - timedelta(microseconds=1) if fired_missed else latest_missed
    skipped: tuple[SkippedRange, ...] = ()
    if skipped_until >= first:
        skipped = (SkippedRange(reason=SkipReason.MISFIRE, first=first, last=skipped_until),)
    return fired_missed + on_time, skipped


def _next_fire(
    recurrence: Recurrence, jitter_seconds: int, *, after: datetime, draw: JitterDraw
) -> NextFire:
    nominal = cached_next_after(recurrence, after)
    if nominal is None:
        return NextFire(scheduled_for=None, fire_at=None)
    jitter = draw(jitter_seconds + 1) if jitter_seconds else 0
    return NextFire(scheduled_for=nominal, fire_at=nominal + timedelta(seconds=jitter))
