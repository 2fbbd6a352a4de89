"""Cron expressions mean what classic (Debian) cron means, and what docs/scheduling.md says."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from apps.core.exceptions import ValidationFailed
from apps.runs.models import Run
from apps.schedules.firing import schedules_fire_due
from apps.schedules.models import Schedule, SkippedFire, SkipReason
from apps.schedules.services import schedule_create
from apps.schedules.timing import Recurrence
from tests.factories import JobFactory

NEW_YEAR = datetime(2026, 1, 1, tzinfo=UTC)


def first_fires(expression: str, count: int = 3, timezone: str = "UTC") -> list[str]:
    fires = Recurrence(cron=expression, timezone=timezone).fires_between(
        NEW_YEAR, NEW_YEAR + timedelta(days=400)
    )
    return [fire.strftime("%m-%d %H:%M") for _, fire in zip(range(count), fires, strict=False)]


@pytest.mark.parametrize(
    ("expression", "fires"),
    [
        pytest.param("5-5 0 * * *", ["01-01 00:05", "01-02 00:05", "01-03 00:05"], id="5-5"),
        pytest.param("0 9 * * 1-1", ["01-05 09:00", "01-12 09:00", "01-19 09:00"], id="1-1"),
        pytest.param("5-5/10 0 * * *", ["01-01 00:05", "01-02 00:05"], id="5-5/10"),
        # A day field starting with * is unrestricted: the two day fields are AND-ed.
        pytest.param("0 0 */2 * 1", ["01-05 00:00", "01-19 00:00", "02-09 00:00"], id="*/2-and"),
        pytest.param("0 0 2 * 1", ["01-02 00:00", "01-05 00:00", "01-12 00:00"], id="or"),
        pytest.param("0 0 * * */3", ["01-03 00:00", "01-04 00:00", "01-07 00:00"], id="dow-step"),
        pytest.param("50/5 23 * * *", ["01-01 23:50", "01-01 23:55", "01-02 23:50"], id="n/s"),
        pytest.param("0 0 * * 7", ["01-04 00:00", "01-11 00:00", "01-18 00:00"], id="7-sunday"),
        pytest.param("0 0 * * sun", ["01-04 00:00", "01-11 00:00", "01-18 00:00"], id="names"),
        pytest.param("0 0 L * *", ["01-31 00:00", "02-28 00:00", "03-31 00:00"], id="L"),
        pytest.param("0 0 LW * *", ["01-30 00:00", "02-27 00:00", "03-31 00:00"], id="LW"),
        pytest.param("0 0 * * 5L", ["01-30 00:00", "02-27 00:00", "03-27 00:00"], id="5L"),
        pytest.param("0 0 * * 1#2", ["01-12 00:00", "02-09 00:00", "03-09 00:00"], id="1#2"),
        # day-of-month OR day-of-week: 1 January, and each fifth Saturday of January.
        pytest.param("0 12 1 1 SAT#5", ["01-01 12:00", "01-31 12:00"], id="SAT#5"),
    ],
)
def test_expressions_fire_as_classic_cron_reads_them(expression, fires):
    assert first_fires(expression, count=len(fires)) == fires


@pytest.fixture
def clock():
    with time_machine.travel(NEW_YEAR, tick=False) as traveller:
        yield traveller


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("expression", "named", "reason"),
    [
        ("1-0 * * * *", "minute field '1-0'", "reversed range"),
        ("0 23-1 * * *", "hour field '23-1'", "reversed range"),
        ("0 0 * * FRI-MON", "day-of-week field 'FRI-MON'", "reversed range"),
        ("0 0 * 12-1 *", "month field '12-1'", "reversed range"),
        ("0 0 1,31-2 * *", "day-of-month field '1,31-2', item '31-2'", "reversed range"),
        ("R R * * *", "minute field 'R'", "R (a random time) is not supported"),
        ("0 r * * *", "hour field 'r'", "R (a random time) is not supported"),
        ("H * * * *", "minute field 'H'", "H (a hashed, per-job time) is not supported"),
        ("H(0-29) * * * *", "minute field 'H(0-29)'", "H (a hashed"),
        ("0 0 ? * MON", "day-of-month field '?'", "'?' is not supported"),
        ("0 0 15W * *", "day-of-month field '15W'", "nearest weekday (W) is not supported"),
        ("1,,2 * * * *", "minute field '1,,2', item ''", "an empty item in the list"),
        ("1, * * * *", "minute field '1,', item ''", "an empty item in the list"),
        ("0 0 * * 1#6", "day-of-week field '1#6'", "the week after # must be 1 to 5"),
        ("0 0 * * 8", "day-of-week field '8'", "8 is out of range 0-7"),
        ("0 0 L/2 * *", "day-of-month field 'L/2'", "L is written alone"),
        ("0 0 * * FRIL", "day-of-week field 'FRIL'", "L follows a day number"),
        ("0 L * * *", "hour field 'L'", "not a number"),
        ("0 0 * MON *", "month field 'MON'", "not a month name"),
        ("*/60 * * * *", "minute field '*/60'", "step '60' must be a number from 1 to 59"),
        ("*-5 * * * *", "minute field '*-5'", "* cannot start a range"),
        ("1-2-3 * * * *", "minute field '1-2-3'", "not a value, a range, a step or *"),
        ("0 0 31 2 *", "'0 0 31 2 *'", "never fires"),
    ],
)
def test_unsupported_or_malformed_cron_is_refused_naming_the_cron_field(
    clock, expression, named, reason
):
    with pytest.raises(ValidationFailed) as raised:
        schedule_create(job=JobFactory(), kind="cron", cron_expression=expression)

    assert raised.value.field == "cron_expression"
    assert named in raised.value.message
    assert reason in raised.value.message
    assert not Schedule.objects.exists()


@pytest.mark.django_db
def test_a_fifth_saturday_or_new_year_is_accepted_as_it_fires(clock):
    schedule = schedule_create(job=JobFactory(), kind="cron", cron_expression="0 12 1 1 SAT#5")

    assert schedule.next_scheduled_for == datetime(2026, 1, 1, 12, tzinfo=UTC)


def test_previous_fire_inside_the_repeated_hour_is_the_first_pass_latest():
    every_quarter = Recurrence(cron="*/15 * * * *", timezone="Europe/Paris")
    second_0220 = datetime(2026, 10, 25, 1, 20, tzinfo=UTC)  # 02:20 CET, the repeated hour

    assert every_quarter.latest_at_or_before(second_0220) == datetime(
        2026, 10, 25, 0, 45, tzinfo=UTC
    )


# Paris falls back at 01:00Z on 25 October 2026: 02:00-02:59 CEST (00:00Z-00:59Z) fire, their
# second pass in CET (01:00Z-01:59Z) does not, then 03:00 CET is 02:00Z.
FIRST_PASS = [datetime(2026, 10, 25, 0, minute, tzinfo=UTC) for minute in (0, 15, 30, 45)]


def quarter_hourly_in_paris(**fields) -> Schedule:
    with time_machine.travel(datetime(2026, 10, 24, 23, 50, tzinfo=UTC), tick=False):
        return schedule_create(
            job=JobFactory(task_type="dts.noop", args={}),
            kind="cron",
            cron_expression="*/15 * * * *",
            timezone_name="Europe/Paris",
            **fields,
        )


def fired(schedule: Schedule) -> list[datetime]:
    runs = Run.objects.filter(schedule=schedule).order_by("scheduled_for")
    return list(runs.values_list("scheduled_for", flat=True))


def skipped(schedule: Schedule) -> list[tuple[datetime, datetime, int]]:
    rows = SkippedFire.objects.filter(schedule=schedule, reason=SkipReason.MISFIRE)
    return [(row.first_scheduled_for, row.last_scheduled_for, row.count) for row in rows]


@pytest.mark.django_db
def test_run_once_after_an_outage_ending_in_the_repeated_hour_fires_its_latest_fire():
    schedule = quarter_hourly_in_paris(misfire_policy="run_once")

    schedules_fire_due(now=datetime(2026, 10, 25, 1, 22, tzinfo=UTC), batch_size=10)

    assert fired(schedule) == [FIRST_PASS[3]]
    assert skipped(schedule) == [(FIRST_PASS[0], FIRST_PASS[2], 3)]


@pytest.mark.django_db
def test_catch_up_after_an_outage_ending_in_the_repeated_hour_keeps_every_fire():
    schedule = quarter_hourly_in_paris(
        misfire_policy="catch_up", catch_up_window_seconds=3600, catch_up_max_fires=10
    )

    schedules_fire_due(now=datetime(2026, 10, 25, 1, 22, tzinfo=UTC), batch_size=10)

    assert fired(schedule) == FIRST_PASS[2:]
    assert skipped(schedule) == [(FIRST_PASS[0], FIRST_PASS[1], 2)]
