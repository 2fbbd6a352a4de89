"""Fire times on the UTC timeline, across both DST transitions of New York and Paris."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from apps.schedules.timing import Recurrence, local_to_utc

NEW_YORK = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")


def local_fires(recurrence: Recurrence, zone: ZoneInfo, start: datetime, hours: int) -> list[str]:
    """Fires in the `hours` real (UTC) hours from `start`, shown on the local clock."""
    start = start.astimezone(UTC)
    end = start + timedelta(hours=hours)
    return [
        fire.astimezone(zone).strftime("%m-%d %H:%M%z")
        for fire in recurrence.fires_between(start, end)
    ]


# (zone, the local midnight of a transition day, daily 02:30 fires, hourly fires over the night)
TRANSITIONS = [
    pytest.param(
        NEW_YORK,
        datetime(2026, 3, 8, tzinfo=NEW_YORK),
        ["03-08 03:00-0400", "03-09 02:30-0400"],
        [
            "03-08 00:00-0500",
            "03-08 01:00-0500",
            "03-08 03:00-0400",
            "03-08 04:00-0400",
            "03-08 05:00-0400",
        ],
        id="new-york-spring-forward",
    ),
    pytest.param(
        NEW_YORK,
        datetime(2026, 11, 1, tzinfo=NEW_YORK),
        ["11-01 02:30-0500", "11-02 02:30-0500"],
        ["11-01 00:00-0400", "11-01 01:00-0400", "11-01 02:00-0500", "11-01 03:00-0500"],
        id="new-york-fall-back",
    ),
    pytest.param(
        PARIS,
        datetime(2026, 3, 29, tzinfo=PARIS),
        ["03-29 03:00+0200", "03-30 02:30+0200"],
        [
            "03-29 00:00+0100",
            "03-29 01:00+0100",
            "03-29 03:00+0200",
            "03-29 04:00+0200",
            "03-29 05:00+0200",
        ],
        id="paris-spring-forward",
    ),
    pytest.param(
        PARIS,
        datetime(2026, 10, 25, tzinfo=PARIS),
        ["10-25 02:30+0200", "10-26 02:30+0100"],
        ["10-25 00:00+0200", "10-25 01:00+0200", "10-25 02:00+0200", "10-25 03:00+0100"],
        id="paris-fall-back",
    ),
]


@pytest.mark.parametrize(("zone", "midnight", "daily", "hourly"), TRANSITIONS)
def test_daily_0230_fires_once_on_transition_days(zone, midnight, daily, hourly):
    recurrence = Recurrence(cron="30 2 * * *", timezone=zone.key)

    assert local_fires(recurrence, zone, midnight, hours=48) == daily


@pytest.mark.parametrize(("zone", "midnight", "daily", "hourly"), TRANSITIONS)
def test_hourly_fires_once_per_wall_clock_hour_on_transition_nights(zone, midnight, daily, hourly):
    recurrence = Recurrence(cron="@hourly", timezone=zone.key)

    assert local_fires(recurrence, zone, midnight, hours=4) == hourly


def test_a_time_in_the_gap_is_placed_at_the_end_of_the_gap():
    wall_time = datetime(2026, 3, 8, 2, 30)  # noqa: DTZ001

    assert local_to_utc(wall_time, NEW_YORK) == datetime(2026, 3, 8, 7, tzinfo=UTC)


def test_an_ambiguous_time_is_placed_at_its_first_occurrence():
    wall_time = datetime(2026, 11, 1, 1, 30)  # noqa: DTZ001

    assert local_to_utc(wall_time, NEW_YORK) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


def test_next_after_an_instant_inside_the_repeated_hour_skips_its_second_reading():
    recurrence = Recurrence(cron="30 * * * *", timezone="America/New_York")
    second_0115 = datetime(2026, 11, 1, 6, 15, tzinfo=UTC)  # 01:15 EST, the repeated hour

    assert recurrence.next_after(second_0115) == datetime(2026, 11, 1, 7, 30, tzinfo=UTC)


def test_interval_fires_are_anchored_at_start_and_ignore_dst():
    start = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)
    recurrence = Recurrence(interval=timedelta(minutes=45), start_at=start)

    fires = list(recurrence.fires_between(start, start + timedelta(hours=2)))

    assert [fire - start for fire in fires] == [timedelta(minutes=45 * step) for step in range(3)]
    assert recurrence.next_after(start + timedelta(minutes=50)) == start + timedelta(minutes=90)


def test_fires_stay_within_start_and_end():
    start = datetime(2026, 1, 1, 10, tzinfo=UTC)
    recurrence = Recurrence(cron="0 * * * *", start_at=start, end_at=start + timedelta(hours=2))

    assert list(recurrence.fires_after(start - timedelta(days=1))) == [
        start,
        start + timedelta(hours=1),
        start + timedelta(hours=2),
    ]


def test_once_fires_a_single_time():
    at = datetime(2026, 6, 1, 12, tzinfo=UTC)
    recurrence = Recurrence(once_at=at)

    assert list(recurrence.fires_after(at - timedelta(days=1))) == [at]
    assert recurrence.next_after(at) is None


@pytest.mark.parametrize(
    ("recurrence", "instant", "latest"),
    [
        (Recurrence(cron="*/15 * * * *"), "2026-01-01T10:44:59", "2026-01-01T10:30:00"),
        (Recurrence(cron="*/15 * * * *"), "2026-01-01T10:45:00", "2026-01-01T10:45:00"),
        (
            Recurrence(cron="30 2 * * *", timezone="America/New_York"),
            "2026-03-08T07:10:00",
            "2026-03-08T07:00:00",
        ),
        (Recurrence(interval=timedelta(seconds=7)), "1970-01-01T00:00:20", "1970-01-01T00:00:14"),
        (Recurrence(once_at=datetime(2026, 1, 1, tzinfo=UTC)), "2025-12-31T00:00:00", None),
    ],
)
def test_latest_fire_at_or_before_an_instant(recurrence, instant, latest):
    found = recurrence.latest_at_or_before(datetime.fromisoformat(instant).replace(tzinfo=UTC))

    assert found == (datetime.fromisoformat(latest).replace(tzinfo=UTC) if latest else None)
