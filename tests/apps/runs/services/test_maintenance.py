from datetime import timedelta

import pytest
from django.utils import timezone

from apps.runs.models import Run, RunLogLine, Worker
from apps.runs.services.maintenance import (
    runs_purge_expired,
    runs_reap_lost,
    runs_republish_missing,
    worker_heartbeat,
    worker_stopped,
)
from apps.runs.services.publish import runs_publish
from apps.runs.states import RunState
from dispatch.broker import broker_waiting_task_ids
from tests.factories import JobFactory, RunFactory

pytestmark = pytest.mark.django_db

TIMEOUT = timedelta(seconds=30)


def beat(active):
    worker_heartbeat(
        hostname="worker-a",
        pid=123,
        queues=["default"],
        concurrency=2,
        started_at=timezone.now(),
        active_run_ids=[str(run.id) for run in active],
        reserved_run_ids=[],
    )


def test_a_heartbeat_records_the_worker_and_the_runs_it_executes():
    running = RunFactory(state=RunState.RUNNING, started_at=timezone.now())

    beat([running])

    worker = Worker.objects.get(hostname="worker-a")
    running.refresh_from_db()
    assert (worker.queues, worker.concurrency, worker.active_run_ids) == (
        ["default"],
        2,
        [str(running.id)],
    )
    assert running.last_seen_at == worker.last_heartbeat_at


def test_a_stopped_worker_is_marked_so():
    beat([])

    worker_stopped(hostname="worker-a")

    assert Worker.objects.get().stopped_at is not None


def test_a_run_no_worker_reports_is_lost_after_the_timeout():
    now = timezone.now()
    silent = RunFactory(state=RunState.RUNNING, worker="worker-a", started_at=now - TIMEOUT * 2)
    reported = RunFactory(state=RunState.RUNNING, started_at=now - TIMEOUT * 2)
    fresh = RunFactory(state=RunState.RUNNING, started_at=now - TIMEOUT / 2)
    beat([reported])

    assert runs_reap_lost(now=timezone.now(), timeout=TIMEOUT) == 1

    for run in (silent, reported, fresh):
        run.refresh_from_db()
    assert silent.state == RunState.LOST
    assert "worker-a stopped reporting this run" in silent.error
    assert (reported.state, fresh.state) == (RunState.RUNNING, RunState.RUNNING)


def test_a_lost_run_with_attempts_left_is_retried():
    job = JobFactory(max_attempts=3)
    run = RunFactory(job=job, state=RunState.RUNNING, started_at=timezone.now() - TIMEOUT * 2)

    runs_reap_lost(now=timezone.now(), timeout=TIMEOUT)

    run.refresh_from_db()
    assert (run.state, run.attempt) == (RunState.RETRYING, 2)


def test_queued_runs_no_broker_holds_are_published_again_and_others_are_not(
    broker, django_capture_on_commit_callbacks
):
    an_hour_ago = timezone.now() - timedelta(hours=1)
    kept = RunFactory(state=RunState.QUEUED, queued_at=an_hour_ago)
    runs_publish(runs=[kept])
    lost = RunFactory(state=RunState.QUEUED, queued_at=an_hour_ago)
    recent = RunFactory(state=RunState.QUEUED, queued_at=timezone.now())

    # The test runs in a transaction; the scheduler's sweep does not, and publishes at once.
    with django_capture_on_commit_callbacks(execute=True):
        republished = runs_republish_missing(
            now=timezone.now(), older_than=timedelta(minutes=1), timeout=TIMEOUT
        )

    assert republished == 1

    assert broker_waiting_task_ids(["default"]) == {str(kept.id), str(lost.id)}
    recent.refresh_from_db()
    assert recent.state == RunState.QUEUED


def test_a_queued_run_held_by_a_dead_worker_is_republished_but_not_one_a_live_worker_holds(
    broker, django_capture_on_commit_callbacks
):
    an_hour_ago = timezone.now() - timedelta(hours=1)
    held_by_dead = RunFactory(
        state=RunState.QUEUED, queued_at=an_hour_ago, last_seen_at=an_hour_ago
    )
    held_by_live = RunFactory(state=RunState.QUEUED, queued_at=an_hour_ago)
    worker_heartbeat(
        hostname="worker-b",
        pid=1,
        queues=["default"],
        concurrency=1,
        started_at=timezone.now(),
        active_run_ids=[],
        reserved_run_ids=[str(held_by_live.id)],
    )

    with django_capture_on_commit_callbacks(execute=True):
        runs_republish_missing(now=timezone.now(), older_than=timedelta(minutes=1), timeout=TIMEOUT)

    assert broker_waiting_task_ids(["default"]) == {str(held_by_dead.id)}


def test_finished_runs_past_retention_go_with_their_logs_and_others_stay():
    now = timezone.now()
    old = RunFactory(state=RunState.SUCCEEDED, finished_at=now - timedelta(days=31))
    RunLogLine.objects.create(
        run=old, attempt=1, sequence=1, logged_at=now, level="INFO", logger="x", message="m"
    )
    recent = RunFactory(state=RunState.FAILED, finished_at=now - timedelta(days=1))
    old_but_running = RunFactory(state=RunState.RUNNING, started_at=now - timedelta(days=40))

    assert runs_purge_expired(now=now, keep=timedelta(days=30)) == 1

    assert set(Run.objects.values_list("id", flat=True)) == {recent.id, old_but_running.id}
    assert not RunLogLine.objects.exists()
