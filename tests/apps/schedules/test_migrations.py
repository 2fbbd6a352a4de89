"""Migration schedules.0002 as `migrate` runs it: from 0001, on rows of the model of that day.

Stored cron expressions the rules refuse are paused saying why (a paused one keeps its pause and
gets the reason appended), and those croniter read differently are made due for the scheduler to
set their next fire by the rules."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.runs.models import Run
from apps.schedules.firing import schedules_fire_due
from apps.schedules.models import Schedule
from tests.factories import JobFactory, UserFactory

# Migrating rewrites the schema of the database the module's other tests use: no transaction to
# roll back, and every test leaves the schedules app migrated to its latest migration again.
pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("schedules", "0001_initial")]
AFTER = [("schedules", "0002_pause_refused_cron")]
NOW = datetime(2026, 5, 4, 12, 0, 30, tzinfo=UTC)  # a Monday


def migrate(targets):
    """Migrate to `targets`; the models as they were there."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


@pytest.fixture
def stored_before_upgrade():
    """`stored(**fields)` stores a cron schedule with the schedules app at 0001; the test then
    migrates forward, and the app is migrated forward at the end in any case."""
    historical = migrate(BEFORE).get_model("schedules", "Schedule")
    job = JobFactory(task_type="dts.noop", args={})

    def stored(**fields):
        return historical.objects.create(job_id=job.id, kind="cron", **fields).id

    yield stored
    migrate(AFTER)


def test_refused_crons_are_paused_saying_why_and_a_paused_one_keeps_its_pause(
    stored_before_upgrade,
):
    paused_at = NOW - timedelta(days=3)
    user = UserFactory()
    reversed_range = stored_before_upgrade(cron_expression="0 23-1 * * *")
    random_time = stored_before_upgrade(cron_expression="R R * * *")
    nearest_weekday = stored_before_upgrade(
        cron_expression="0 9 15W * *",
        paused=True,
        pause_note="vendor outage",
        paused_at=paused_at,
        paused_by_id=user.id,
    )

    with time_machine.travel(NOW, tick=False):
        migrate(AFTER)

    stored = Schedule.objects.in_bulk([reversed_range, random_time, nearest_weekday])
    assert all(schedule.paused for schedule in stored.values())
    assert stored[reversed_range].paused_at == NOW
    assert stored[reversed_range].pause_note == (
        "Paused on upgrade: the cron expression '0 23-1 * * *' is no longer accepted (hour field "
        "'23-1': a reversed range; ranges go from low to high and do not wrap around (write two "
        "ranges as a list instead).) Edit it, then resume."
    )
    assert "minute field 'R': R (a random time) is not supported" in (
        stored[random_time].pause_note
    )
    kept = stored[nearest_weekday]
    assert (kept.paused_at, kept.paused_by_id) == (paused_at, user.id)
    assert kept.pause_note.startswith("vendor outage\n\nPaused on upgrade: ")
    assert "day-of-month field '15W': the nearest weekday (W) is not supported" in kept.pause_note


def test_crons_croniter_read_otherwise_are_made_due_and_the_next_tick_sets_them_by_the_rules(
    stored_before_upgrade,
):
    # Next fires as croniter computed them: 5-5 as the whole minute field, 1-1 as every day (here
    # nothing left), */2 OR Monday. Unchanged: a plain daily time, and the next fire it has.
    one_minute = stored_before_upgrade(
        cron_expression="5-5 0 * * *",
        next_scheduled_for=NOW + timedelta(minutes=1),
        next_fire_at=NOW + timedelta(minutes=1, seconds=20),
    )
    one_day = stored_before_upgrade(cron_expression="0 9 * * 1-1")
    both_day_fields = stored_before_upgrade(
        cron_expression="0 0 */2 * 1",
        next_scheduled_for=NOW - timedelta(hours=2),
        next_fire_at=NOW - timedelta(hours=2) + timedelta(seconds=20),
    )
    unchanged = stored_before_upgrade(
        cron_expression="0 9 * * *",
        next_scheduled_for=datetime(2026, 5, 5, 9, tzinfo=UTC),
        next_fire_at=datetime(2026, 5, 5, 9, 0, 20, tzinfo=UTC),
    )

    with time_machine.travel(NOW, tick=False):
        migrate(AFTER)

    def next_fires(schedule_id):
        schedule = Schedule.objects.get(id=schedule_id)
        assert not schedule.paused
        return schedule.next_scheduled_for, schedule.next_fire_at

    assert next_fires(one_minute) == (NOW, NOW)
    assert next_fires(one_day) == (NOW, NOW)
    assert next_fires(both_day_fields) == (NOW - timedelta(hours=2), NOW - timedelta(hours=2))
    assert next_fires(unchanged) == (
        datetime(2026, 5, 5, 9, tzinfo=UTC),
        datetime(2026, 5, 5, 9, 0, 20, tzinfo=UTC),
    )

    report = schedules_fire_due(now=NOW + timedelta(seconds=1), batch_size=100)

    assert report.claimed == 3
    assert not Run.objects.exists()  # none of the three has a fire due by the rules
    assert next_fires(one_minute)[0] == datetime(2026, 5, 5, 0, 5, tzinfo=UTC)
    assert next_fires(one_day)[0] == datetime(2026, 5, 11, 9, tzinfo=UTC)
    # Mondays that fall on an odd day of the month.
    assert next_fires(both_day_fields)[0] == datetime(2026, 5, 11, tzinfo=UTC)
