import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from apps.core.exceptions import ValidationFailed
from apps.jobs.services import job_update
from apps.schedules.models import Schedule, SkippedFire, SkipReason
from apps.schedules.services import (
    schedule_create,
    schedule_pause,
    schedule_preview,
    schedule_resume,
    schedule_update,
    skipped_fires_purge,
)
from tests.factories import JobFactory, ScheduleFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 5, 4, 12, 0, 30, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def cron(expression, **fields):
    return schedule_create(job=JobFactory(), kind="cron", cron_expression=expression, **fields)


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"kind": "cron", "cron_expression": "61 * * * *"}, "cron_expression", "out of range"),
        ({"kind": "cron", "cron_expression": "* 24 * * *"}, "cron_expression", "out of range"),
        ({"kind": "cron", "cron_expression": "*/0 * * * *"}, "cron_expression", "step '0'"),
        ({"kind": "cron", "cron_expression": "0 0 31 2 *"}, "cron_expression", "never fires"),
        ({"kind": "cron", "cron_expression": "0 0 30 2 *"}, "cron_expression", "never fires"),
        ({"kind": "cron", "cron_expression": "* * * *"}, "cron_expression", "must have 5 fields"),
        (
            {"kind": "cron", "cron_expression": "0 * * * * *"},
            "cron_expression",
            "must have 5 fields",
        ),
        (
            {"kind": "cron", "cron_expression": "@reboot"},
            "cron_expression",
            "not a supported alias",
        ),
        ({"kind": "cron", "cron_expression": "banana"}, "cron_expression", "must have 5 fields"),
        (
            {"kind": "cron", "cron_expression": "0 9 * * FUNDAY"},
            "cron_expression",
            "'FUNDAY' is not a day name",
        ),
        ({"kind": "cron", "cron_expression": ""}, "cron_expression", "is required"),
        (
            {"kind": "cron", "cron_expression": "@daily", "timezone_name": "Mars/Olympus_Mons"},
            "timezone",
            "not an IANA time zone",
        ),
        (
            {"kind": "cron", "cron_expression": "@daily", "timezone_name": "../../etc/passwd"},
            "timezone",
            "not an IANA time zone",
        ),
        ({"kind": "interval", "interval_seconds": 0}, "interval_seconds", "between 1 and"),
        ({"kind": "interval", "interval_seconds": 10**9}, "interval_seconds", "between 1 and"),
        ({"kind": "interval"}, "interval_seconds", "is required"),
        ({"kind": "once", "once_at": NOW - timedelta(seconds=1)}, "once_at", "in the past"),
        (
            {"kind": "interval", "interval_seconds": 60, "cron_expression": "@daily"},
            "cron_expression",
            "only for cron",
        ),
        ({"kind": "weekly"}, "kind", "not a valid choice"),
        (
            {
                "kind": "interval",
                "interval_seconds": 60,
                "start_at": NOW + timedelta(days=2),
                "end_at": NOW + timedelta(days=1),
            },
            "end_at",
            "after start_at",
        ),
        (
            {"kind": "interval", "interval_seconds": 60, "end_at": NOW - timedelta(days=1)},
            "end_at",
            "in the past",
        ),
        (
            {"kind": "interval", "interval_seconds": 60, "jitter_seconds": 60},
            "jitter_seconds",
            "shorter than the interval",
        ),
        (
            {"kind": "interval", "interval_seconds": 60, "catch_up_max_fires": 0},
            "catch_up_max_fires",
            "between 1 and",
        ),
        (
            {
                "kind": "cron",
                "cron_expression": "0 0 1 1 *",
                "start_at": NOW,
                "end_at": NOW + timedelta(days=30),
            },
            "end_at",
            "never fire",
        ),
    ],
)
def test_invalid_schedules_are_refused_with_the_field_and_reason(clock, fields, field, reason):
    with pytest.raises(ValidationFailed) as raised:
        schedule_create(job=JobFactory(), **fields)

    assert raised.value.field == field
    assert reason in raised.value.message
    assert Schedule.objects.count() == 0


def test_next_fire_is_computed_on_create(clock):
    schedule = cron("*/5 * * * *")

    assert schedule.next_scheduled_for == datetime(2026, 5, 4, 12, 5, tzinfo=UTC)
    assert schedule.next_fire_at == schedule.next_scheduled_for


def test_jitter_delays_the_fire_but_not_its_nominal_time(clock):
    schedule = cron("0 * * * *", jitter_seconds=600)

    assert schedule.next_scheduled_for == datetime(2026, 5, 4, 13, tzinfo=UTC)
    assert (
        schedule.next_scheduled_for
        <= schedule.next_fire_at
        <= schedule.next_scheduled_for + timedelta(seconds=600)
    )


def test_aliases_and_names_are_accepted(clock):
    assert cron("@hourly").next_scheduled_for == datetime(2026, 5, 4, 13, tzinfo=UTC)
    assert cron("0 9 * JAN-DEC MON-FRI").next_scheduled_for == datetime(2026, 5, 5, 9, tzinfo=UTC)


def test_preview_lists_the_next_fire_times_in_order(clock):
    schedule = cron("30 2 * * *", timezone_name="Europe/Paris")

    fires = schedule_preview(schedule, count=3, after=datetime(2026, 3, 28, tzinfo=UTC))

    assert [fire.isoformat() for fire in fires] == [
        "2026-03-28T01:30:00+00:00",
        "2026-03-29T01:00:00+00:00",  # 02:30 does not exist that night: the end of the gap
        "2026-03-30T00:30:00+00:00",
    ]


def test_preview_refuses_an_absurd_count(clock):
    with pytest.raises(ValidationFailed) as raised:
        schedule_preview(cron("@daily"), count=100_000)

    assert raised.value.field == "count"


def test_an_edit_recomputes_the_next_fire_from_now(clock):
    schedule = cron("@daily")

    schedule_update(schedule=schedule, data={"cron_expression": "*/10 * * * *"})

    schedule.refresh_from_db()
    assert schedule.next_scheduled_for == datetime(2026, 5, 4, 12, 10, tzinfo=UTC)


def test_a_bad_edit_writes_nothing(clock):
    schedule = cron("@daily")

    with pytest.raises(ValidationFailed):
        schedule_update(schedule=schedule, data={"cron_expression": "0 0 31 2 *"})

    schedule.refresh_from_db()
    assert schedule.cron_expression == "@daily"


def test_pause_and_resume_record_the_fires_skipped_while_paused(clock, admin_user):
    schedule = cron("0 * * * *")
    schedule_pause(schedule=schedule, note="maintenance window", actor=admin_user)
    clock.shift(timedelta(hours=3))

    schedule_resume(schedule=schedule)

    schedule.refresh_from_db()
    skipped = schedule.skipped_fires.get()
    assert (skipped.reason, skipped.count) == (SkipReason.PAUSED, 3)
    assert skipped.first_scheduled_for == datetime(2026, 5, 4, 13, tzinfo=UTC)
    assert schedule.next_scheduled_for == datetime(2026, 5, 4, 16, tzinfo=UTC)
    assert not schedule.paused


def test_pause_keeps_who_paused_and_why(clock, admin_user):
    schedule = schedule_pause(schedule=cron("@daily"), note="vendor outage", actor=admin_user)

    schedule.refresh_from_db()
    assert (schedule.paused, schedule.pause_note, schedule.paused_by) == (
        True,
        "vendor outage",
        admin_user,
    )
    assert schedule.paused_at == NOW


def test_pausing_twice_is_refused(clock, admin_user):
    schedule = schedule_pause(schedule=cron("@daily"), note="", actor=admin_user)

    with pytest.raises(ValidationFailed, match="already paused"):
        schedule_pause(schedule=schedule, note="", actor=admin_user)


def test_enabling_a_job_again_skips_what_passed_while_it_was_disabled(clock):
    schedule = cron("0 * * * *")
    job_update(job=schedule.job, data={"enabled": False})
    clock.shift(timedelta(hours=2))

    job_update(job=schedule.job, data={"enabled": True})

    schedule.refresh_from_db()
    assert schedule.skipped_fires.get().reason == SkipReason.DISABLED
    assert schedule.next_scheduled_for == datetime(2026, 5, 4, 15, tzinfo=UTC)


# Expressions the rules refuse that croniter took, so a schedule stored before them may have one
# (paused, as the scheduler pauses it): each is refused by name, none reaches cronsim.
REFUSED_STORED_CRONS = [
    ("R R * * *", "minute field 'R'"),
    ("0 23-1 * * *", "hour field '23-1': a reversed range"),
    ("0 0 15W * *", "the nearest weekday (W) is not supported"),
    ("0 0 ? * *", "'?' is not supported"),
    ("H * * * *", "H (a hashed, per-job time) is not supported"),
]


def stored_cron(expression, **fields):
    """A schedule stored before the current rules, as the scheduler leaves it: paused."""
    stored = {
        "paused": True,
        "pause_note": "Paused on upgrade",
        "next_scheduled_for": NOW - timedelta(hours=1),
        "next_fire_at": NOW - timedelta(hours=1),
    }
    return ScheduleFactory(
        kind="cron", interval_seconds=None, cron_expression=expression, **{**stored, **fields}
    )


@pytest.mark.parametrize(("expression", "reason"), REFUSED_STORED_CRONS)
def test_resuming_a_stored_refused_cron_is_refused_naming_the_field(clock, expression, reason):
    schedule = stored_cron(expression)

    with pytest.raises(ValidationFailed, match=re.escape(reason)) as refused:
        schedule_resume(schedule=schedule)

    assert refused.value.field == "cron_expression"
    schedule.refresh_from_db()
    assert schedule.paused
    assert not schedule.skipped_fires.exists()


@pytest.mark.parametrize(("expression", "reason"), REFUSED_STORED_CRONS)
def test_previewing_a_stored_refused_cron_is_refused_naming_the_field(clock, expression, reason):
    with pytest.raises(ValidationFailed, match=re.escape(reason)) as refused:
        schedule_preview(stored_cron(expression), count=3)

    assert refused.value.field == "cron_expression"


def test_enabling_a_job_again_passes_over_a_stored_refused_cron(clock):
    schedule = stored_cron("R R * * *", paused=False)
    job = schedule.job
    job_update(job=job, data={"enabled": False})

    job_update(job=job, data={"enabled": True})

    schedule.refresh_from_db()
    # Left for the scheduler, which pauses it saying why (tests/apps/schedules/test_firing.py).
    assert schedule.next_fire_at == NOW - timedelta(hours=1)


def test_skipped_fire_records_past_retention_are_removed_and_recent_ones_stay(clock):
    schedule = ScheduleFactory()
    fields = {"reason": SkipReason.OVERLAP, "first_scheduled_for": NOW, "last_scheduled_for": NOW}
    old = SkippedFire.objects.create(schedule=schedule, count=1, **fields)
    SkippedFire.objects.filter(id=old.id).update(created_at=NOW - timedelta(days=31))
    recent = SkippedFire.objects.create(schedule=schedule, count=2, **fields)

    assert skipped_fires_purge(now=NOW, keep=timedelta(days=30)) == 1

    assert list(SkippedFire.objects.values_list("id", flat=True)) == [recent.id]
