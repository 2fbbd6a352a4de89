"""The fire planner alone: what fires, what is skipped and why, and the next fire.

No test here has the database: the planner reads none and writes nothing, and pytest-django
refuses any query made without the django_db mark, so each test also checks that.
"""

from datetime import UTC, datetime, timedelta

import pytest

from apps.schedules.models import MisfirePolicy, Schedule, ScheduleKind, SkipReason
from apps.schedules.planner import (
    SKIPPED_COUNT_BOUND,
    FirePlan,
    NextFire,
    SkippedCount,
    SkippedRange,
    fire_plan,
    next_fire,
    skipped_fires_count,
    skipped_while_inactive,
)

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
GRACE = 60
MICROSECOND = timedelta(microseconds=1)


def no_jitter(bound: int) -> int:
    raise AssertionError("a schedule without jitter draws none")


def cron(expression: str, *, next_scheduled_for: datetime | None, **fields) -> Schedule:
    return Schedule(
        kind=ScheduleKind.CRON,
        cron_expression=expression,
        next_scheduled_for=next_scheduled_for,
        **fields,
    )


def plan(schedule: Schedule, now: datetime) -> FirePlan:
    return fire_plan(schedule, now=now, grace_seconds=GRACE, draw_jitter=no_jitter)


def test_a_due_time_fires_and_the_next_fire_follows_it():
    every_minute = cron("* * * * *", next_scheduled_for=T0)

    assert plan(every_minute, T0 + timedelta(seconds=1)) == FirePlan(
        fire_times=(T0,),
        skipped=(),
        next_fire=NextFire(
            scheduled_for=T0 + timedelta(minutes=1), fire_at=T0 + timedelta(minutes=1)
        ),
    )


def test_a_time_not_yet_due_fires_nothing():
    every_minute = cron("* * * * *", next_scheduled_for=T0)

    answer = plan(every_minute, T0 - timedelta(seconds=1))

    assert (answer.fire_times, answer.skipped, answer.next_fire.scheduled_for) == ((), (), T0)


@pytest.mark.parametrize("policy", MisfirePolicy.values)
def test_a_fire_late_by_less_than_the_grace_fires_whatever_the_policy(policy):
    every_minute = cron("* * * * *", next_scheduled_for=T0, misfire_policy=policy)

    answer = plan(every_minute, T0 + timedelta(seconds=GRACE - 1))

    assert (answer.fire_times, answer.skipped) == ((T0,), ())


# Every ten minutes from T0, the scheduler back 3 hours later: 2h50 is the latest missed fire
# (later than the grace), 3h00 is on time.
BACK = T0 + timedelta(hours=3, seconds=30)


def minutes(count: int) -> datetime:
    return T0 + timedelta(minutes=count)


@pytest.mark.parametrize(
    ("fields", "fired", "skipped_until"),
    [
        pytest.param({"misfire_policy": MisfirePolicy.SKIP}, [180], minutes(170), id="skip"),
        pytest.param(
            {"misfire_policy": MisfirePolicy.RUN_ONCE},
            [170, 180],
            minutes(170) - MICROSECOND,
            id="run_once",
        ),
        pytest.param(
            {"misfire_policy": MisfirePolicy.CATCH_UP, "catch_up_window_seconds": 3600},
            [130, 140, 150, 160, 170, 180],
            minutes(130) - MICROSECOND,
            id="catch_up within the window",
        ),
        pytest.param(
            {
                "misfire_policy": MisfirePolicy.CATCH_UP,
                "catch_up_window_seconds": 3600,
                "catch_up_max_fires": 2,
            },
            [160, 170, 180],
            minutes(160) - MICROSECOND,
            id="catch_up at most max fires",
        ),
    ],
)
def test_missed_fires_are_fired_or_skipped_by_the_misfire_policy(fields, fired, skipped_until):
    every_ten_minutes = cron("*/10 * * * *", next_scheduled_for=T0, **fields)

    answer = plan(every_ten_minutes, BACK)

    assert answer.fire_times == tuple(minutes(count) for count in fired)
    assert answer.skipped == (
        SkippedRange(reason=SkipReason.MISFIRE, first=T0, last=skipped_until),
    )
    assert answer.next_fire.scheduled_for == minutes(190)


def test_catch_up_fires_every_missed_time_when_all_are_within_the_window_and_skips_none():
    every_ten_minutes = cron(
        "*/10 * * * *",
        next_scheduled_for=T0,
        misfire_policy=MisfirePolicy.CATCH_UP,
        catch_up_window_seconds=3600,
    )

    answer = plan(every_ten_minutes, T0 + timedelta(minutes=30, seconds=30))

    assert answer.fire_times == (T0, minutes(10), minutes(20), minutes(30))
    assert answer.skipped == ()


def test_the_jitter_widens_the_grace():
    skip_missed = {"misfire_policy": MisfirePolicy.SKIP, "next_scheduled_for": T0}
    late = T0 + timedelta(seconds=GRACE + 20)

    without_jitter = plan(cron("* * * * *", **skip_missed), late)
    with_jitter = fire_plan(
        cron("* * * * *", jitter_seconds=30, **skip_missed),
        now=late,
        grace_seconds=GRACE,
        draw_jitter=lambda bound: 0,
    )

    assert (without_jitter.fire_times, without_jitter.skipped) == (
        (minutes(1),),
        (SkippedRange(reason=SkipReason.MISFIRE, first=T0, last=T0),),
    )
    assert (with_jitter.fire_times, with_jitter.skipped) == ((T0, minutes(1)), ())


def test_the_jitter_delays_the_next_fire_but_not_its_nominal_time():
    draws = []

    def draw_latest(bound: int) -> int:
        draws.append(bound)
        return bound - 1

    jittered = cron("* * * * *", next_scheduled_for=T0, jitter_seconds=30)

    answer = fire_plan(
        jittered, now=T0 + timedelta(seconds=1), grace_seconds=GRACE, draw_jitter=draw_latest
    )

    assert answer.next_fire == NextFire(
        scheduled_for=minutes(1), fire_at=minutes(1) + timedelta(seconds=30)
    )
    assert draws == [31]  # 0 to 30 seconds, both included


@pytest.mark.parametrize(
    ("expression", "due", "following"),
    [
        pytest.param(
            "30 2 * * *",
            datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # 02:30 does not exist: 03:00 EDT
            datetime(2026, 3, 9, 6, 30, tzinfo=UTC),  # 02:30 EDT
            id="the hour skipped by the jump forward",
        ),
        pytest.param(
            "30 1 * * *",
            datetime(2026, 11, 1, 5, 30, tzinfo=UTC),  # 01:30 EDT, the first pass
            datetime(2026, 11, 2, 6, 30, tzinfo=UTC),  # 01:30 EST the next day, not the second pass
            id="the hour repeated by the fall back",
        ),
    ],
)
def test_a_dst_night_fires_the_wall_clock_time_once(expression, due, following):
    daily = cron(expression, next_scheduled_for=due, timezone="America/New_York")

    answer = plan(daily, due + timedelta(seconds=1))

    assert answer.fire_times == (due,)
    assert answer.next_fire.scheduled_for == following


@pytest.mark.parametrize(
    ("policy", "fired", "skipped"),
    [
        pytest.param(
            MisfirePolicy.SKIP,
            (),
            (
                SkippedRange(
                    SkipReason.MISFIRE,
                    datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
                    datetime(2026, 10, 25, 0, 45, tzinfo=UTC),
                ),
            ),
            id="skip",
        ),
        pytest.param(
            MisfirePolicy.CATCH_UP,
            (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 0, 45, tzinfo=UTC)),
            (),
            id="catch_up",
        ),
    ],
)
def test_an_outage_into_the_repeated_hour_misses_only_its_first_pass(policy, fired, skipped):
    # Paris, 25 October 2026: 02:30 and 02:45 CEST fired once; their second pass (CET) never fires,
    # and the next fire is 03:00 CET. Back at 02:20 CET (01:20Z).
    quarterly = cron(
        "*/15 * * * *",
        next_scheduled_for=datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        timezone="Europe/Paris",
        misfire_policy=policy,
    )

    answer = plan(quarterly, datetime(2026, 10, 25, 1, 20, tzinfo=UTC))

    assert (answer.fire_times, answer.skipped) == (fired, skipped)
    assert answer.next_fire.scheduled_for == datetime(2026, 10, 25, 2, 0, tzinfo=UTC)


def test_the_last_fire_before_end_at_leaves_nothing_to_fire():
    every_minute = Schedule(
        kind=ScheduleKind.INTERVAL,
        interval_seconds=60,
        end_at=minutes(2),
        next_scheduled_for=minutes(2),
    )

    answer = plan(every_minute, minutes(2) + timedelta(seconds=1))

    assert answer.fire_times == (minutes(2),)
    assert answer.next_fire == NextFire(scheduled_for=None, fire_at=None)


def test_an_outage_past_end_at_runs_once_the_last_fire_before_it():
    every_minute = Schedule(
        kind=ScheduleKind.INTERVAL,
        interval_seconds=60,
        end_at=minutes(10),
        next_scheduled_for=T0,
        misfire_policy=MisfirePolicy.RUN_ONCE,
    )

    answer = plan(every_minute, T0 + timedelta(hours=1))

    assert answer.fire_times == (minutes(10),)
    assert answer.skipped == (
        SkippedRange(reason=SkipReason.MISFIRE, first=T0, last=minutes(10) - MICROSECOND),
    )
    assert answer.next_fire == NextFire(scheduled_for=None, fire_at=None)


@pytest.mark.parametrize(
    ("policy", "fired", "skipped"),
    [
        pytest.param(MisfirePolicy.RUN_ONCE, (T0,), (), id="run_once"),
        pytest.param(
            MisfirePolicy.SKIP,
            (),
            (SkippedRange(reason=SkipReason.MISFIRE, first=T0, last=T0),),
            id="skip",
        ),
    ],
)
def test_a_missed_once_at_schedule_fires_or_is_skipped_then_is_done(policy, fired, skipped):
    once = Schedule(
        kind=ScheduleKind.ONCE, once_at=T0, next_scheduled_for=T0, misfire_policy=policy
    )

    answer = plan(once, T0 + timedelta(hours=1))

    assert (answer.fire_times, answer.skipped) == (fired, skipped)
    assert answer.next_fire == NextFire(scheduled_for=None, fire_at=None)


def test_a_once_at_schedule_on_time_fires_once():
    once = Schedule(kind=ScheduleKind.ONCE, once_at=T0, next_scheduled_for=T0)

    assert plan(once, T0 + timedelta(seconds=1)) == FirePlan(
        fire_times=(T0,), skipped=(), next_fire=NextFire(scheduled_for=None, fire_at=None)
    )


def test_a_schedule_with_nothing_left_fires_nothing_and_stays_done():
    done = cron("* * * * *", next_scheduled_for=None, end_at=T0)

    assert plan(done, T0 + timedelta(hours=1)) == FirePlan(
        fire_times=(), skipped=(), next_fire=NextFire(scheduled_for=None, fire_at=None)
    )


def test_next_fire_is_strictly_after_the_instant():
    every_minute = cron("* * * * *", next_scheduled_for=None)

    assert next_fire(every_minute, after=T0, draw_jitter=no_jitter) == NextFire(
        scheduled_for=minutes(1), fire_at=minutes(1)
    )


def test_the_fires_passed_while_paused_are_one_range_up_to_now():
    paused = cron("* * * * *", next_scheduled_for=T0)

    assert skipped_while_inactive(paused, reason=SkipReason.PAUSED, now=minutes(5)) == (
        SkippedRange(reason=SkipReason.PAUSED, first=T0, last=minutes(5))
    )
    assert skipped_while_inactive(paused, reason=SkipReason.PAUSED, now=T0 - MICROSECOND) is None
    paused.next_scheduled_for = None
    assert skipped_while_inactive(paused, reason=SkipReason.DISABLED, now=minutes(5)) is None


def test_a_pause_past_end_at_skips_the_fires_before_the_end_and_leaves_none_next():
    paused = Schedule(
        kind=ScheduleKind.INTERVAL, interval_seconds=60, end_at=minutes(3), next_scheduled_for=T0
    )
    resumed_at = minutes(30)

    skipped = skipped_while_inactive(paused, reason=SkipReason.PAUSED, now=resumed_at)

    assert skipped == SkippedRange(reason=SkipReason.PAUSED, first=T0, last=resumed_at)
    assert skipped_fires_count(paused.recurrence(), first=T0, last=resumed_at) == SkippedCount(
        count=4, last=minutes(3), is_lower_bound=False
    )
    assert next_fire(paused, after=resumed_at) == NextFire(scheduled_for=None, fire_at=None)


def test_counting_skipped_fires_stops_at_the_bound():
    every_second = Schedule(kind=ScheduleKind.INTERVAL, interval_seconds=1).recurrence()

    counted = skipped_fires_count(every_second, first=T0, last=T0 + timedelta(days=1))

    assert counted == SkippedCount(
        count=SKIPPED_COUNT_BOUND,
        last=T0 + timedelta(seconds=SKIPPED_COUNT_BOUND - 1),
        is_lower_bound=True,
    )


def test_a_range_without_a_fire_time_counts_none():
    hourly = cron("0 * * * *", next_scheduled_for=None).recurrence()

    assert skipped_fires_count(hourly, first=minutes(1), last=minutes(59)) is None
