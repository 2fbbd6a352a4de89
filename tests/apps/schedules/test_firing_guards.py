"""The two guards that keep a fire time to one run, each tested on its own: the claim skips a
schedule another scheduler holds (`FOR UPDATE SKIP LOCKED`), and the insert passes over a fire
time that already has its run (the conflict handling). The unique key on (schedule, fire time)
would hide either one's absence from a test that looks only at the runs in the end."""

from datetime import UTC, datetime, timedelta

import psycopg2
import pytest
import time_machine
from django.db import connection

from apps.events.models import EventType, OutboxEvent
from apps.runs.models import Run, RunTrigger
from apps.runs.states import RunState
from apps.schedules.firing import schedules_fire_due
from apps.schedules.models import Schedule
from apps.schedules.services import schedule_create
from tests.factories import JobFactory, RunFactory

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def every_minute_from(start: datetime) -> Schedule:
    with time_machine.travel(start, tick=False):
        return schedule_create(
            job=JobFactory(task_type="dts.noop", args={}), kind="cron", cron_expression="* * * * *"
        )


@pytest.fixture
def other_scheduler():
    """A second database session, as another scheduler's: `hold(schedule)` locks its row until the
    end of the test."""
    session = psycopg2.connect(**connection.get_connection_params())

    def hold(schedule: Schedule) -> None:
        with session.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {Schedule._meta.db_table} WHERE id = %s FOR UPDATE",  # noqa: S608
                [schedule.id],
            )

    yield hold
    session.rollback()
    session.close()


@pytest.fixture
def lock_wait_limit():
    """A tick that waits for a lock fails after a few seconds instead of hanging the test."""
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '5s'")
    yield
    with connection.cursor() as cursor:
        cursor.execute("RESET lock_timeout")


@pytest.mark.django_db(transaction=True)
def test_a_tick_passes_over_a_schedule_another_scheduler_holds_at_once(
    other_scheduler, lock_wait_limit, sent_tasks
):
    held = every_minute_from(T0 - timedelta(seconds=30))
    free = every_minute_from(T0 - timedelta(seconds=30))
    other_scheduler(held)

    # A tick that waited for the held row would fail on lock_timeout instead of returning.
    report = schedules_fire_due(now=T0 + timedelta(seconds=1), batch_size=100)

    assert report.claimed == 1
    assert [run.schedule_id for run in report.fired] == [free.id]
    assert not Run.objects.filter(schedule=held).exists()
    # The held schedule is left as it was, for the scheduler that holds it.
    assert Schedule.objects.get(id=held.id).next_scheduled_for == T0
    assert Schedule.objects.get(id=free.id).next_scheduled_for == T0 + timedelta(minutes=1)


@pytest.mark.django_db
def test_a_fire_time_that_already_has_its_run_is_passed_over_without_an_error(
    django_capture_on_commit_callbacks, sent_tasks
):
    schedule = every_minute_from(T0 - timedelta(seconds=30))
    existing = RunFactory(
        job=schedule.job,
        schedule=schedule,
        trigger=RunTrigger.SCHEDULE,
        scheduled_for=T0,
        state=RunState.SUCCEEDED,
        finished_at=T0,
    )

    with django_capture_on_commit_callbacks(execute=True):
        report = schedules_fire_due(now=T0 + timedelta(seconds=1), batch_size=100)

    assert (report.claimed, report.fired) == (1, [])
    assert list(Run.objects.filter(schedule=schedule).values_list("id", "state")) == [
        (existing.id, RunState.SUCCEEDED)
    ]
    # Nothing announced or sent for a run this tick did not make.
    assert not OutboxEvent.objects.filter(
        type__in=[EventType.SCHEDULE_FIRED, EventType.RUN_QUEUED]
    ).exists()
    assert sent_tasks == []
    schedule.refresh_from_db()
    assert (schedule.next_scheduled_for, schedule.last_fired_for) == (T0 + timedelta(minutes=1), T0)
