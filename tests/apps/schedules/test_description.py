"""A schedule in words (Schedule.describe): the admin, the API's `description` and the CLI."""

from datetime import UTC, datetime

import pytest

from apps.schedules.models import Schedule, ScheduleKind
from apps.schedules.timing import cron_describe, interval_describe


@pytest.mark.parametrize(
    ("kind", "fields", "words"),
    [
        (
            ScheduleKind.CRON,
            {"cron_expression": "0 9 * * 1-5", "timezone": "Europe/Paris"},
            "At 09:00, Monday through Friday, Europe/Paris",
        ),
        (ScheduleKind.CRON, {"cron_expression": "@daily"}, "At 00:00, UTC"),
        (ScheduleKind.CRON, {"cron_expression": "*/15 * * * *"}, "Every 15 minutes, UTC"),
        (ScheduleKind.INTERVAL, {"interval_seconds": 600}, "Every 10 minutes"),
        (ScheduleKind.INTERVAL, {"interval_seconds": 86400}, "Every day"),
        (ScheduleKind.INTERVAL, {"interval_seconds": 90}, "Every 90 seconds"),
        (
            ScheduleKind.ONCE,
            {"once_at": datetime(2030, 1, 1, 8, 30, tzinfo=UTC)},
            "Once, at 2030-01-01 08:30:00 UTC",
        ),
    ],
)
def test_a_schedule_reads_as_a_person_says_it(kind, fields, words):
    assert Schedule(kind=kind, **fields).describe() == words


def test_an_expression_the_describer_cannot_read_is_shown_as_it_is():
    assert cron_describe("0 0 30 2 *") == "At 00:00, on day 30 of the month, only in February"
    assert cron_describe("not cron") == "not cron"
    assert interval_describe(3600) == "Every hour"
