"""Schedule dates stay within [1970, 2200): refused with the field and reason, never a 500 later
(an overflow past year 9999 when a jitter, an offset or an interval is added)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from apps.core.exceptions import ValidationFailed
from apps.schedules.models import Schedule
from apps.schedules.services import schedule_create, schedule_preview, schedule_update
from apps.schedules.timing import HORIZON, Recurrence
from tests.factories import JobFactory

NOW = datetime(2026, 5, 4, 12, tzinfo=UTC)
# What an API client sends; each overflowed somewhere before the bound.
FAR_FUTURE = [
    pytest.param(
        {"kind": "once", "once_at": "9999-12-31T23:59:59Z", "jitter_seconds": 3600},
        "once_at",
        id="once-at-9999-with-jitter",
    ),
    pytest.param(
        {"kind": "cron", "cron_expression": "0 0 * * *", "start_at": "9999-06-01T00:00:00Z"},
        "start_at",
        id="cron-starting-9999",
    ),
    pytest.param(
        {"kind": "interval", "interval_seconds": 86400, "start_at": "9999-12-31T00:00:00Z"},
        "start_at",
        id="interval-starting-9999",
    ),
    pytest.param(
        {"kind": "interval", "interval_seconds": 60, "end_at": "9999-12-31T23:59:59-12:00"},
        "end_at",
        id="end-past-9999-in-utc",
    ),
    pytest.param(
        {"kind": "once", "once_at": "2200-01-01T00:00:00Z"},
        "once_at",
        id="once-at-the-horizon",
    ),
    pytest.param(
        {
            "kind": "cron",
            "cron_expression": "0 0 * * *",
            "timezone": "America/Los_Angeles",
            "start_at": "0001-01-01T00:00:00Z",
        },
        "start_at",
        id="start-in-year-1",
    ),
]


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def service_fields(body: dict) -> dict:
    fields = {
        key: datetime.fromisoformat(value) if key.endswith("_at") else value
        for key, value in body.items()
    }
    fields["timezone_name"] = fields.pop("timezone", "UTC")
    return fields


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "field"), FAR_FUTURE)
def test_a_date_past_the_horizon_is_refused_by_the_service_naming_it(clock, body, field):
    with pytest.raises(ValidationFailed) as raised:
        schedule_create(job=JobFactory(), **service_fields(body))

    assert raised.value.field == field
    assert "before 2200-01-01T00:00:00Z" in raised.value.message
    assert not Schedule.objects.exists()


@pytest.mark.django_db
def test_a_once_at_just_before_the_horizon_keeps_its_jitter(clock):
    last_second = HORIZON - timedelta(seconds=1)

    schedule = schedule_create(
        job=JobFactory(), kind="once", once_at=last_second, jitter_seconds=3600
    )

    assert schedule.next_scheduled_for == last_second
    assert last_second <= schedule.next_fire_at <= last_second + timedelta(hours=1)


@pytest.mark.django_db
def test_an_edit_to_a_cron_that_first_fires_past_the_horizon_is_refused(clock):
    schedule = schedule_create(job=JobFactory(), kind="cron", cron_expression="0 0 * * *")

    with pytest.raises(ValidationFailed) as raised:
        schedule_update(
            schedule=schedule,
            data={"cron_expression": "0 0 29 2 *", "start_at": datetime(2197, 1, 1, tzinfo=UTC)},
        )

    assert raised.value.field == "start_at"
    assert "no fire time before 2200-01-01" in raised.value.message


@pytest.mark.parametrize(
    "recurrence",
    [
        Recurrence(cron="* * * * *", timezone="Pacific/Kiritimati"),
        Recurrence(cron="0 0 29 2 1", timezone="Etc/GMT+12"),
        Recurrence(interval=timedelta(days=366), start_at=datetime(2199, 1, 1, tzinfo=UTC)),
        Recurrence(once_at=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
    ids=["cron-east", "cron-west", "interval", "once-stored-before-the-bound"],
)
def test_fire_times_stop_at_the_horizon_without_overflowing(recurrence):
    last_second = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)

    assert recurrence.next_after(last_second) is None
    assert list(recurrence.fires_between(HORIZON - timedelta(days=1), last_second)) == [
        fire for fire in recurrence.fires_between(HORIZON - timedelta(days=1), HORIZON)
    ]
    assert all(fire < HORIZON for fire in recurrence.fires_after(HORIZON - timedelta(days=400)))
    latest = recurrence.latest_at_or_before(last_second)
    assert latest is None or latest < HORIZON
    assert recurrence.latest_at_or_before(datetime(1, 1, 1, tzinfo=UTC)) is None


@pytest.mark.django_db
def test_preview_after_the_horizon_is_empty(clock):
    schedule = schedule_create(job=JobFactory(), kind="cron", cron_expression="@daily")

    assert schedule_preview(schedule, count=1000, after=HORIZON) == []
