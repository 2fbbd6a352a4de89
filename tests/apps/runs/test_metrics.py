"""The runs' series move as the run services write (apps.runs.metrics): a start, each ending, a
retry, a deferral, a loss and who saw it; and none of them with DTS_METRICS_ENABLED off."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.runs.metrics import ActiveRun, LostDetector
from apps.runs.models import Run
from apps.runs.services.maintenance import runs_reap_lost
from apps.runs.services.moves import run_attempt_end, run_attempt_lost, run_cancel, run_start
from apps.runs.states import RunState
from tests.factories import JobFactory, RunFactory
from tests.metrics import Moves

pytestmark = pytest.mark.django_db

LABELS = {"queue": "default", "task_type": "dts.noop"}


def queued(**job_fields) -> Run:
    job = JobFactory(task_type="dts.noop", args={}, **job_fields)
    queued_at = timezone.now() - timedelta(seconds=2)
    return RunFactory(job=job, task_type="dts.noop", args={}, queued_at=queued_at)


def started(**job_fields) -> Run:
    run = queued(**job_fields)
    assert run_start(run_id=run.id, attempt=1, worker="w", limited=False) is not None
    return run


@pytest.mark.parametrize("limited", [False, True])
def test_a_start_and_a_success_count_the_attempt_its_wait_and_its_duration(limited):
    run = queued()
    moves = Moves()

    run_start(run_id=run.id, attempt=1, worker="w", limited=limited)
    run_attempt_end(run_id=run.id, attempt=1, outcome=RunState.SUCCEEDED, result=None)

    assert moves("dts_runs_started_total", **LABELS) == 1
    assert moves("dts_run_queue_wait_seconds_count", queue="default") == 1
    assert moves("dts_run_queue_wait_seconds_sum", queue="default") >= 2  # queued 2 s ago
    assert moves("dts_runs_finished_total", **LABELS, outcome="succeeded") == 1
    assert moves("dts_run_duration_seconds_count", **LABELS) == 1


def test_a_failure_with_attempts_left_counts_the_failure_and_a_retry():
    run = started(max_attempts=2)
    moves = Moves()

    run_attempt_end(run_id=run.id, attempt=1, outcome=RunState.FAILED, error="boom")

    assert moves("dts_runs_finished_total", **LABELS, outcome="failed") == 1
    assert moves("dts_run_retries_total", **LABELS) == 1
    assert moves("dts_run_duration_seconds_count", **LABELS) == 1


def test_an_ending_already_recorded_counts_nothing():
    run = started()
    run_attempt_end(run_id=run.id, attempt=1, outcome=RunState.SUCCEEDED)
    moves = Moves()

    run_attempt_end(run_id=run.id, attempt=1, outcome=RunState.FAILED, error="late")

    assert moves("dts_runs_finished_total", **LABELS, outcome="failed") == 0
    assert moves("dts_runs_finished_total", **LABELS, outcome="succeeded") == 0


def test_a_lost_attempt_counts_who_found_it():
    by_worker, by_reaper = started(), started()
    moves = Moves()

    run_attempt_lost(
        run_id=by_worker.id, attempt=1, reason="Worker lost", detected_by=LostDetector.WORKER
    )
    runs_reap_lost(now=timezone.now() + timedelta(hours=1), timeout=timedelta(minutes=1))

    assert moves("dts_runs_lost_total", queue="default", detected_by="worker") == 1
    assert moves("dts_runs_lost_total", queue="default", detected_by="reaper") == 1
    assert moves("dts_runs_finished_total", **LABELS, outcome="lost") == 2
    assert Run.objects.get(id=by_reaper.id).state == RunState.LOST


def test_a_cancelled_run_whose_process_is_killed_is_cancelled_not_lost():
    run = started()
    run_cancel(run=run)
    moves = Moves()

    run_attempt_lost(run_id=run.id, attempt=1, reason="killed", detected_by=LostDetector.WORKER)

    assert moves("dts_runs_finished_total", **LABELS, outcome="cancelled") == 1
    assert moves("dts_runs_lost_total", queue="default", detected_by="worker") == 0


def test_a_start_held_back_by_the_jobs_cap_counts_a_deferral_not_a_start():
    first = started(max_concurrent_runs=1)
    second = RunFactory(job=first.job, task_type="dts.noop", args={})
    moves = Moves()

    assert run_start(run_id=second.id, attempt=1, worker="w", limited=True) is None

    assert moves("dts_run_rate_limit_deferrals_total", queue="default") == 1
    assert moves("dts_runs_started_total", **LABELS) == 0


def test_an_executing_attempt_is_active_until_its_block_ends():
    moves = Moves()
    seen = []

    def failing_task() -> None:
        with ActiveRun(queue="default"):
            seen.append(moves("dts_runs_active", queue="default"))
            raise RuntimeError("the task failed")

    with pytest.raises(RuntimeError):
        failing_task()
    assert seen == [1]
    assert moves("dts_runs_active", queue="default") == 0


def test_nothing_is_counted_with_metrics_off(settings):
    settings.DTS_METRICS_ENABLED = False
    run = queued()
    moves = Moves()

    run_start(run_id=run.id, attempt=1, worker="w", limited=False)
    with ActiveRun(queue="default"):
        assert moves("dts_runs_active", queue="default") == 0
    run_attempt_end(run_id=run.id, attempt=1, outcome=RunState.SUCCEEDED)

    assert moves("dts_runs_started_total", **LABELS) == 0
    assert moves("dts_runs_finished_total", **LABELS, outcome="succeeded") == 0
