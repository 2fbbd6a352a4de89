"""Every change writes exactly one event, schema-valid, in the change's own transaction."""

import re
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from apps.events.envelope import envelope
from apps.events.models import EventType, OutboxEvent
from apps.events.outbox import events_purge_published
from apps.events.validation import event_problems
from apps.jobs.services import job_create, job_delete, job_update
from apps.runs.metrics import LostDetector
from apps.runs.models import Run
from apps.runs.services.build import run_trigger
from apps.runs.services.moves import (
    run_attempt_end,
    run_attempt_lost,
    run_cancel,
    run_start,
    runs_retry_due,
)
from apps.runs.states import RunState
from apps.schedules.firing import schedules_fire_due
from apps.schedules.models import SkipReason
from apps.schedules.planner import SkippedRange
from apps.schedules.services import schedule_create, skipped_fires_record
from tests.factories import JobFactory, RunFactory, TeamFactory

pytestmark = pytest.mark.django_db


def events(**filters):
    return list(OutboxEvent.objects.filter(**filters).order_by("sequence"))


def types(**filters):
    return [event.type for event in events(**filters)]


def assert_valid(event):
    assert event_problems(envelope(event)) == []


@pytest.fixture(autouse=True)
def every_event_is_schema_valid():
    yield
    for event in OutboxEvent.objects.all():
        assert_valid(event)


def test_a_run_that_succeeds_says_queued_started_succeeded():
    run = run_trigger(job=JobFactory(task_type="dts.noop", args={}))
    run_start(run_id=run.id, attempt=1, worker="w1")
    run_attempt_end(run_id=run.id, attempt=1, outcome=RunState.SUCCEEDED, result={"ok": 1})

    assert types(subject=f"runs/{run.id}") == [
        EventType.RUN_QUEUED,
        EventType.RUN_STARTED,
        EventType.RUN_SUCCEEDED,
    ]
    started = envelope(events(type=EventType.RUN_STARTED)[0])
    assert started["data"] == {
        "run_id": str(run.id),
        "job_id": run.job_id,
        "attempt": 1,
        "state": "running",
        "worker": "w1",
    }
    assert (started["specversion"], started["source"], started["subject"]) == (
        "1.0",
        "/dts",
        f"runs/{run.id}",
    )


def test_a_failed_attempt_retries_then_the_run_fails():
    run = RunFactory(job=JobFactory(max_attempts=2, retry_jitter=False), state=RunState.QUEUED)
    run_start(run_id=run.id, attempt=1, worker="w")
    run_attempt_end(run_id=run.id, attempt=1, outcome=RunState.FAILED, error="ValueError: x")
    Run.objects.filter(id=run.id).update(next_attempt_at=timezone.now())
    runs_retry_due(now=timezone.now() + timedelta(seconds=1))
    run_start(run_id=run.id, attempt=2, worker="w")
    run_attempt_lost(
        run_id=run.id, attempt=2, reason="Worker lost", detected_by=LostDetector.WORKER
    )

    subject = f"runs/{run.id}"
    assert types(subject=subject) == [
        EventType.RUN_STARTED,
        EventType.RUN_RETRYING,
        EventType.RUN_QUEUED,
        EventType.RUN_STARTED,
        EventType.RUN_LOST,
    ]
    retrying = envelope(events(type=EventType.RUN_RETRYING)[0])["data"]
    assert (retrying["outcome"], retrying["error"]) == ("failed", "ValueError: x")


def test_cancelling_a_waiting_run_and_a_running_one():
    waiting = RunFactory(state=RunState.QUEUED)
    running = RunFactory(state=RunState.QUEUED)
    run_start(run_id=running.id, attempt=1, worker="w")
    running.refresh_from_db()

    run_cancel(run=waiting)
    run_cancel(run=running)
    run_attempt_end(run_id=running.id, attempt=1, outcome=RunState.FAILED, error="Terminated")

    assert types(subject=f"runs/{waiting.id}") == [EventType.RUN_CANCELLED]
    assert types(subject=f"runs/{running.id}") == [
        EventType.RUN_STARTED,
        EventType.RUN_CANCELLING,
        EventType.RUN_CANCELLED,
    ]


def test_a_refused_start_or_a_late_signal_writes_nothing():
    run = RunFactory(state=RunState.SUCCEEDED)

    assert run_start(run_id=run.id, attempt=1, worker="w") is None
    assert not run_attempt_end(run_id=run.id, attempt=1, outcome=RunState.SUCCEEDED)
    assert not run_attempt_end(run_id=run.id, attempt=1, outcome=RunState.FAILED, error="late")

    assert events() == []


def test_job_created_updated_paused_resumed_deleted():
    job = job_create(team=TeamFactory(), name="nightly", task_type="dts.noop")
    job_id = job.id
    job_update(job=job, data={"priority": 7})
    job_update(job=job, data={"priority": 7})  # no change: no event
    job_update(job=job, data={"enabled": False})
    job_update(job=job, data={"enabled": True, "description": "again"})
    job_delete(job=job)

    assert types(subject=f"jobs/{job_id}") == [
        EventType.JOB_CREATED,
        EventType.JOB_UPDATED,
        EventType.JOB_PAUSED,
        EventType.JOB_RESUMED,
        EventType.JOB_DELETED,
    ]
    updated = envelope(events(type=EventType.JOB_UPDATED)[0])["data"]
    assert updated["changes"] == {"priority": {"old": 5, "new": 7}}
    assert envelope(events(type=EventType.JOB_CREATED)[0])["data"]["definition"]["task_type"] == (
        "dts.noop"
    )


def test_a_schedule_fire_and_a_skip():
    now = timezone.now()
    schedule = schedule_create(
        job=JobFactory(task_type="dts.noop", args={}), kind="interval", interval_seconds=60
    )
    schedules_fire_due(now=schedule.next_fire_at, batch_size=10)
    skipped_fires_record(
        schedule,
        SkippedRange(reason=SkipReason.OVERLAP, first=now, last=now + timedelta(minutes=5)),
    )

    fired, skipped = events(subject=f"schedules/{schedule.id}")
    assert (fired.type, skipped.type) == (EventType.SCHEDULE_FIRED, EventType.SCHEDULE_SKIPPED)
    run = Run.objects.get(schedule=schedule)
    assert fired.data["run_id"] == str(run.id)
    assert (skipped.data["reason"], skipped.data["count"]) == ("overlap", 5)


def test_a_rolled_back_change_leaves_no_event():
    def create_then_fail():
        with transaction.atomic():
            job_create(team=TeamFactory(), name="gone", task_type="dts.noop")
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        create_then_fail()

    assert events() == []


def test_with_events_off_nothing_is_written(settings):
    settings.DTS_EVENTS_ENABLED = False
    run = RunFactory(state=RunState.QUEUED)
    job_create(team=TeamFactory(), name="quiet", task_type="dts.noop")
    run_start(run_id=run.id, attempt=1, worker="w")
    run_attempt_end(run_id=run.id, attempt=1, outcome=RunState.SUCCEEDED)

    assert events() == []
    assert Run.objects.get(id=run.id).state == RunState.SUCCEEDED


def test_published_events_past_their_keeping_are_purged(settings):
    settings.DTS_EVENTS_KEEP_HOURS = 1
    job_create(team=TeamFactory(), name="a", task_type="dts.noop")
    job_create(team=TeamFactory(), name="b", task_type="dts.noop")
    job_create(team=TeamFactory(), name="c", task_type="dts.noop")
    old_published, old_waiting, recent = events()
    OutboxEvent.objects.filter(sequence__in=[old_published.sequence, old_waiting.sequence]).update(
        time=timezone.now() - timedelta(hours=2)
    )
    OutboxEvent.objects.filter(sequence__in=[old_published.sequence, recent.sequence]).update(
        published_at=timezone.now()
    )

    assert events_purge_published(now=timezone.now()) == 1
    assert [event.sequence for event in events()] == [old_waiting.sequence, recent.sequence]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--batch-size", "0", "--batch-size must be between 1 and 10000."),
        ("--batch-size", "20000", "--batch-size must be between 1 and 10000."),
        ("--metrics-port", "70000", "--metrics-port must be between 0 and 65535."),
    ],
)
def test_the_relay_command_refuses_bad_options(option, value, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("relay_events", option, value)
