"""apps.jobs.health: a job's health from plain facts, no database."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from apps.jobs.health import (
    HealthPolicy,
    JobHealth,
    ScheduleFacts,
    SkippedSpan,
    job_health,
    judged_due_time,
    next_fire_at,
    schedule_health,
)
from apps.runs.states import RunState
from apps.schedules.timing import Recurrence

HOUR = timedelta(hours=1)
GRACE = timedelta(seconds=60)
POLICY = HealthPolicy(grace_seconds=60, failing_runs=3)
# An hourly schedule (anchored at the epoch: on the hour), created a day before T0.
T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
HOURLY = ScheduleFacts(
    recurrence=Recurrence(interval=HOUR),
    jitter_seconds=0,
    active=True,
    expected_since=T0 - timedelta(days=1),
    last_fired_for=None,
    answered_for=None,
    next_fire_at=None,
)
SECOND = timedelta(seconds=1)


def health(facts=HOURLY, *, now, skipped=(), policy=POLICY):
    return schedule_health(facts, now=now, policy=policy, skipped=skipped)


def test_the_judged_due_time_is_the_latest_one_whose_grace_has_passed():
    assert judged_due_time(HOURLY, now=T0 + GRACE, grace_seconds=60) == T0
    assert judged_due_time(HOURLY, now=T0 + GRACE - SECOND, grace_seconds=60) == T0 - HOUR


def test_a_due_time_answered_is_ok_and_so_is_one_within_its_grace():
    answered = replace(HOURLY, answered_for=T0 - HOUR)

    assert health(answered, now=T0 + GRACE - SECOND) == JobHealth.OK
    assert health(replace(HOURLY, answered_for=T0), now=T0 + HOUR - SECOND) == JobHealth.OK


def test_a_due_time_with_no_run_started_is_late_once_its_grace_has_passed():
    answered_before = replace(HOURLY, answered_for=T0 - HOUR)

    assert health(answered_before, now=T0 + GRACE) == JobHealth.LATE
    assert health(answered_before, now=T0 + HOUR + GRACE - SECOND) == JobHealth.LATE


def test_it_is_missed_once_the_next_due_time_has_passed_its_grace_unanswered_too():
    answered_before = replace(HOURLY, answered_for=T0 - HOUR)

    assert health(answered_before, now=T0 + HOUR + GRACE) == JobHealth.MISSED
    assert health(answered_before, now=T0 + 30 * HOUR) == JobHealth.MISSED


def test_a_later_due_time_answered_makes_it_ok_again():
    answered_later = replace(HOURLY, answered_for=T0 + HOUR)

    assert health(answered_later, now=T0 + HOUR + GRACE) == JobHealth.OK
    # a run of a due time still within its grace that started already is an answer too
    assert health(answered_later, now=T0 + HOUR + SECOND) == JobHealth.OK


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        (T0, T0, JobHealth.MISSED),  # skipped: its window closed at once
        (T0 - 3 * HOUR, T0, JobHealth.MISSED),
        (T0 - 3 * HOUR, T0 - HOUR, JobHealth.LATE),  # an older skip, answered since
        (T0 + HOUR, T0 + HOUR, JobHealth.LATE),  # a later one, not judged yet
    ],
)
def test_a_skipped_fire_recorded_for_the_judged_due_time_is_missed_at_once(first, last, expected):
    answered_before = replace(HOURLY, answered_for=T0 - HOUR)
    skipped = [SkippedSpan(first=first, last=last)]

    assert health(answered_before, now=T0 + GRACE, skipped=skipped) == expected


def test_due_times_before_the_schedule_was_created_changed_or_resumed_are_not_expected():
    created = replace(HOURLY, expected_since=T0 + 10 * SECOND)

    assert judged_due_time(created, now=T0 + HOUR / 2, grace_seconds=60) is None
    assert health(created, now=T0 + HOUR / 2) == JobHealth.OK
    # its first expected due time unanswered is late, not missed: none came before it
    assert health(created, now=T0 + HOUR + GRACE) == JobHealth.LATE
    assert health(created, now=T0 + 2 * HOUR + GRACE) == JobHealth.MISSED
    # created exactly at a due time: that one is not expected
    assert health(replace(HOURLY, expected_since=T0), now=T0 + HOUR / 2) == JobHealth.OK


def test_a_schedule_never_answered_since_long_ago_is_missed():
    assert health(HOURLY, now=T0 + GRACE) == JobHealth.MISSED


def test_the_jitter_extends_the_grace():
    jittered = replace(HOURLY, jitter_seconds=300, answered_for=T0 - HOUR)

    assert health(jittered, now=T0 + GRACE + 299 * SECOND) == JobHealth.OK
    assert health(jittered, now=T0 + GRACE + 300 * SECOND) == JobHealth.LATE


def test_a_paused_or_disabled_schedule_is_paused_whatever_its_runs():
    assert health(replace(HOURLY, active=False), now=T0 + 30 * HOUR) == JobHealth.PAUSED
    assert judged_due_time(replace(HOURLY, active=False), now=T0, grace_seconds=60) is None


def test_a_fired_due_time_whose_runs_the_retention_removed_counts_as_answered():
    monthly = replace(
        HOURLY,
        recurrence=Recurrence(cron="0 0 1 * *"),
        expected_since=datetime(2025, 1, 1, tzinfo=UTC),
        last_fired_for=datetime(2026, 1, 1, tzinfo=UTC),
    )
    now = datetime(2026, 1, 31, 12, tzinfo=UTC)
    kept_30_days = replace(POLICY, runs_kept_since=now - timedelta(days=30))
    kept_40_days = replace(POLICY, runs_kept_since=now - timedelta(days=40))

    assert health(monthly, now=now, policy=kept_30_days) == JobHealth.OK
    # the run could not have been removed yet: its absence counts
    assert health(monthly, now=now, policy=kept_40_days) == JobHealth.MISSED
    assert health(monthly, now=now) == JobHealth.MISSED


def test_a_once_at_schedule_unanswered_stays_late_as_no_due_time_follows():
    once = replace(HOURLY, recurrence=Recurrence(once_at=T0))

    assert health(once, now=T0 + GRACE - SECOND) == JobHealth.OK
    assert health(once, now=T0 + GRACE) == JobHealth.LATE
    assert health(once, now=T0 + timedelta(days=400)) == JobHealth.LATE
    assert health(replace(once, answered_for=T0), now=T0 + timedelta(days=400)) == JobHealth.OK
    assert health(once, now=T0 + GRACE, skipped=[SkippedSpan(T0, T0)]) == JobHealth.MISSED


def test_a_cron_schedule_is_judged_on_its_own_wall_clock():
    # 02:30 in New York: on 8 March 2026 the clocks jump from 02:00 to 03:00, so it fires at 03:00
    # EDT (07:00Z); the day before at 02:30 EST (07:30Z).
    nightly = replace(
        HOURLY,
        recurrence=Recurrence(cron="30 2 * * *", timezone="America/New_York"),
        expected_since=datetime(2026, 3, 1, tzinfo=UTC),
        answered_for=datetime(2026, 3, 7, 7, 30, tzinfo=UTC),
    )
    due = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)

    assert judged_due_time(nightly, now=due + GRACE, grace_seconds=60) == due
    assert health(nightly, now=due + GRACE - SECOND) == JobHealth.OK
    assert health(nightly, now=due + GRACE) == JobHealth.LATE
    assert health(nightly, now=datetime(2026, 3, 9, 6, 31, tzinfo=UTC)) == JobHealth.MISSED


def test_a_schedule_whose_worker_is_gone_goes_ok_late_missed_at_exact_instants():
    """Every second over three hours: the run of 10:00 started, then none did."""
    facts = replace(HOURLY, answered_for=T0)
    seen = []
    now = T0
    while now < T0 + 3 * HOUR:
        verdict = health(facts, now=now)
        if not seen or seen[-1][1] != verdict:
            seen.append((now, verdict))
        now += SECOND

    assert seen == [
        (T0, JobHealth.OK),
        (T0 + HOUR + GRACE, JobHealth.LATE),
        (T0 + 2 * HOUR + GRACE, JobHealth.MISSED),
    ]


# The job ----------------------------------------------------------------------------------------

FAILED, SUCCEEDED = RunState.FAILED, RunState.SUCCEEDED


def job(*, enabled=True, schedules=(), outcomes=(), failing_runs=3):
    return job_health(
        enabled=enabled,
        schedules=list(schedules),
        recent_outcomes=list(outcomes),
        failing_runs=failing_runs,
    )


@pytest.mark.parametrize(
    ("schedules", "outcomes", "expected"),
    [
        ([], [], JobHealth.OK),
        ([], [FAILED, FAILED, FAILED], JobHealth.FAILING),
        ([JobHealth.OK], [FAILED, FAILED, SUCCEEDED], JobHealth.OK),
        ([JobHealth.OK], [FAILED, RunState.TIMED_OUT, RunState.LOST], JobHealth.FAILING),
        # fewer finished runs than N: all of them
        ([JobHealth.OK], [FAILED], JobHealth.FAILING),
        ([JobHealth.OK], [SUCCEEDED], JobHealth.OK),
        # only the latest N count
        ([JobHealth.OK], [FAILED, FAILED, FAILED, SUCCEEDED], JobHealth.FAILING),
        ([JobHealth.OK, JobHealth.LATE], [FAILED] * 3, JobHealth.LATE),
        ([JobHealth.MISSED, JobHealth.LATE], [FAILED] * 3, JobHealth.MISSED),
        ([JobHealth.LATE, JobHealth.MISSED, JobHealth.OK], [], JobHealth.MISSED),
        # a paused schedule beside an active one: the active one is judged
        ([JobHealth.PAUSED, JobHealth.OK], [], JobHealth.OK),
        ([JobHealth.PAUSED, JobHealth.LATE], [], JobHealth.LATE),
        ([JobHealth.PAUSED, JobHealth.PAUSED], [FAILED] * 3, JobHealth.PAUSED),
    ],
)
def test_the_worst_schedule_wins_then_failing(schedules, outcomes, expected):
    assert job(schedules=schedules, outcomes=outcomes) == expected


@pytest.mark.parametrize("schedules", [[], [JobHealth.MISSED], [JobHealth.OK, JobHealth.LATE]])
def test_a_disabled_job_is_paused_whatever_else(schedules):
    assert job(enabled=False, schedules=schedules, outcomes=[FAILED] * 3) == JobHealth.PAUSED


def test_n_is_the_setting():
    assert job(outcomes=[FAILED, SUCCEEDED], failing_runs=1) == JobHealth.FAILING
    assert job(outcomes=[FAILED, SUCCEEDED], failing_runs=2) == JobHealth.OK


def test_the_next_fire_is_the_soonest_of_the_active_schedules():
    soon, later = T0, T0 + HOUR
    schedules = [
        replace(HOURLY, next_fire_at=later),
        replace(HOURLY, next_fire_at=soon, active=False),
        replace(HOURLY, next_fire_at=None),
        replace(HOURLY, next_fire_at=later - SECOND),
    ]

    assert next_fire_at(enabled=True, schedules=schedules) == later - SECOND
    assert next_fire_at(enabled=False, schedules=schedules) is None
    assert next_fire_at(enabled=True, schedules=[]) is None
