"""A run's change and its outbox event commit together or not at all: with the outbox refusing
every insert, each change (trigger, start, cancel, an attempt's end, a retry, a schedule's fire)
raises and leaves nothing of itself behind, and nothing is sent to the broker or to workers.

The refusal is a trigger on the outbox table, so it catches every way the code writes an event
(the ORM's bulk insert, and the hot path's `INSERT … SELECT` inside the run's own statement): an
event written after the change's transaction instead of inside it would leave the change
committed. The tests commit for real (transaction=True), as the code under test does."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import DatabaseError, connection
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.events.models import OutboxEvent
from apps.runs.models import Run, RunAttempt
from apps.runs.services.build import run_trigger
from apps.runs.services.moves import run_attempt_end, run_cancel, run_start, runs_retry_due
from apps.runs.states import RunState
from apps.schedules.firing import schedules_fire_due
from apps.schedules.models import Schedule
from apps.schedules.services import schedule_create
from tests.factories import JobFactory, RunFactory

pytestmark = pytest.mark.django_db(transaction=True)

REFUSAL = "outbox refused by the test"


@pytest.fixture
def outbox_refuses():
    """Call it to make every insert into the outbox fail, until the end of the test."""
    table = OutboxEvent._meta.db_table

    def refuse() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE OR REPLACE FUNCTION test_outbox_refuse() RETURNS trigger AS $$ "
                f"BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER test_outbox_refuse BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION test_outbox_refuse()"
            )

    yield refuse
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER IF EXISTS test_outbox_refuse ON {table}")
        cursor.execute("DROP FUNCTION IF EXISTS test_outbox_refuse()")


@pytest.fixture
def told_workers(monkeypatch):
    """The control commands (cancel) broadcast to workers, sent nowhere."""
    told: list[dict] = []
    monkeypatch.setattr(
        "dispatch.messages.app.control.broadcast",
        lambda *args, **kwargs: told.append({"args": args, **kwargs}),
    )
    return told


def running(**job_fields) -> Run:
    return RunFactory(
        job=JobFactory(task_type="dts.noop", args={}, **job_fields),
        state=RunState.RUNNING,
        worker="worker-a",
        started_at=timezone.now(),
    )


def state_of(run: Run) -> tuple:
    run.refresh_from_db()
    return (run.state, run.attempt, run.finished_at, run.next_attempt_at)


def test_a_trigger_whose_event_fails_leaves_no_run(outbox_refuses, sent_tasks):
    job = JobFactory(task_type="dts.noop", args={})
    outbox_refuses()

    with pytest.raises(DatabaseError, match=REFUSAL):
        run_trigger(job=job)

    assert not Run.objects.exists()
    assert not AuditEntry.objects.exists()
    assert sent_tasks == []


@pytest.mark.parametrize("state", [RunState.QUEUED, RunState.RUNNING])
def test_a_cancel_whose_event_fails_leaves_the_run_as_it_was(
    state, outbox_refuses, told_workers, sent_tasks
):
    run = RunFactory(
        job=JobFactory(task_type="dts.noop", args={}),
        state=state,
        started_at=timezone.now() if state == RunState.RUNNING else None,
    )
    before = state_of(run)
    outbox_refuses()

    with pytest.raises(DatabaseError, match=REFUSAL):
        run_cancel(run=run)

    assert state_of(run) == before
    assert not AuditEntry.objects.exists()
    assert told_workers == []


@pytest.mark.parametrize("limited", [False, True])
def test_a_start_whose_event_fails_leaves_the_run_queued(limited, outbox_refuses):
    run = RunFactory(job=JobFactory(task_type="dts.noop", args={}), state=RunState.QUEUED)
    outbox_refuses()

    with pytest.raises(DatabaseError, match=REFUSAL):
        run_start(run_id=run.id, attempt=1, worker="worker-a", limited=limited)

    run.refresh_from_db()
    assert (run.state, run.worker, run.started_at) == (RunState.QUEUED, "", None)


@pytest.mark.parametrize(
    ("outcome", "max_attempts"),
    [
        (RunState.SUCCEEDED, 1),  # the hot path: one statement
        (RunState.FAILED, 1),  # the run ends
        (RunState.FAILED, 3),  # the run is retried
        (RunState.TIMED_OUT, 1),
        (RunState.LOST, 1),
    ],
)
def test_an_attempt_end_whose_event_fails_leaves_the_run_running(
    outcome, max_attempts, outbox_refuses
):
    run = running(max_attempts=max_attempts)
    before = state_of(run)
    outbox_refuses()

    with pytest.raises(DatabaseError, match=REFUSAL):
        run_attempt_end(run_id=run.id, attempt=1, outcome=outcome, error="boom")

    assert state_of(run) == before
    assert not RunAttempt.objects.exists()


def test_a_retry_whose_event_fails_leaves_the_run_waiting(outbox_refuses, sent_tasks):
    now = timezone.now()
    run = RunFactory(
        job=JobFactory(task_type="dts.noop", args={}, max_attempts=3),
        state=RunState.RETRYING,
        attempt=2,
        next_attempt_at=now - timedelta(seconds=1),
    )
    before = state_of(run)
    outbox_refuses()

    with pytest.raises(DatabaseError, match=REFUSAL):
        runs_retry_due(now=now)

    assert state_of(run) == before
    assert sent_tasks == []


def test_a_fire_whose_events_fail_makes_no_run_and_keeps_the_fire_due(outbox_refuses, sent_tasks):
    start = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    with time_machine.travel(start - timedelta(seconds=30), tick=False):
        schedule = schedule_create(
            job=JobFactory(task_type="dts.noop", args={}), kind="cron", cron_expression="* * * * *"
        )
    outbox_refuses()

    with pytest.raises(DatabaseError, match=REFUSAL):
        schedules_fire_due(now=start + timedelta(seconds=1), batch_size=100)

    assert not Run.objects.exists()
    assert Schedule.objects.get(id=schedule.id).next_scheduled_for == start
    assert sent_tasks == []
