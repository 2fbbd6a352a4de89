"""The scheduler's series move as it fires (apps.schedules.metrics): fires once committed, their
lateness once published (from the fire's due time, its jitter included), skipped due times by
reason; and the backlog it measures."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from apps.schedules.firing import schedules_due_count, schedules_fire_due
from apps.schedules.models import SkipReason
from apps.schedules.services import schedule_create
from tests.factories import JobFactory
from tests.metrics import Moves

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def every_minute(**fields):
    with time_machine.travel(T0 - timedelta(seconds=30), tick=False):
        return schedule_create(
            job=JobFactory(task_type="dts.noop", args={}),
            kind="cron",
            cron_expression="* * * * *",
            **fields,
        )


@pytest.mark.parametrize("jitter_seconds", [0, 20])
def test_a_fire_is_counted_and_its_lateness_measured_from_its_due_time_once_published(
    jitter_seconds, django_capture_on_commit_callbacks, sent_tasks
):
    schedule = every_minute(jitter_seconds=jitter_seconds)
    due = schedule.next_fire_at
    moves = Moves()

    with (
        time_machine.travel(due + timedelta(seconds=2), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        schedules_fire_due(now=due + timedelta(seconds=1), batch_size=100)

    assert len(sent_tasks) == 1
    assert moves("dts_scheduler_fires_total", queue="default") == 1
    assert moves("dts_scheduler_fire_lateness_seconds_count") == 1
    assert moves("dts_scheduler_fire_lateness_seconds_sum") == pytest.approx(2.0)


def test_a_fire_not_published_has_no_lateness_yet(django_capture_on_commit_callbacks):
    every_minute()
    moves = Moves()

    with django_capture_on_commit_callbacks(execute=False):
        schedules_fire_due(now=T0 + timedelta(seconds=1), batch_size=100)

    assert moves("dts_scheduler_fires_total", queue="default") == 1
    assert moves("dts_scheduler_fire_lateness_seconds_count") == 0


def test_skipped_due_times_are_counted_by_reason():
    every_minute(misfire_policy="skip")
    schedules_fire_due(now=T0, batch_size=100)
    moves = Moves()

    schedules_fire_due(now=T0 + timedelta(hours=3, seconds=30), batch_size=100)

    assert moves("dts_scheduler_skipped_fires_total", reason=SkipReason.MISFIRE.value) == 179
    assert moves("dts_scheduler_fires_total", queue="default") == 1


def test_the_backlog_counts_the_schedules_due_and_not_fired():
    every_minute()
    every_minute()

    assert schedules_due_count(now=T0 - timedelta(seconds=1)) == 0
    assert schedules_due_count(now=T0) == 2
    schedules_fire_due(now=T0, batch_size=1)
    assert schedules_due_count(now=T0) == 1


def test_nothing_is_counted_with_metrics_off(settings):
    settings.DTS_METRICS_ENABLED = False
    every_minute()
    moves = Moves()

    schedules_fire_due(now=T0, batch_size=100)

    assert moves("dts_scheduler_fires_total", queue="default") == 0
