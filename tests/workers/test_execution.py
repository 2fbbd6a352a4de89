"""A real `celery worker` process on the real Redis and PostgreSQL executes runs end to end."""

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from apps.core.exceptions import NotFound
from apps.jobs.services import job_create
from apps.runs.logs import run_log_lines
from apps.runs.models import Run
from apps.runs.services.build import run_trigger
from apps.runs.services.moves import run_cancel
from apps.runs.states import RunState
from apps.schedules.firing import schedules_fire_due
from apps.schedules.services import schedule_create
from dispatch.celery import app
from dispatch.messages import EXECUTE_RUN_TASK
from tests.conftest import wait_for_run
from tests.factories import JobFactory, TeamFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def test_triggered_run_succeeds_with_its_result_stored(celery_worker_process):
    job = job_create(
        team=TeamFactory(),
        name="echo",
        task_type="dts.echo",
        args={"greeting": "hello", "n": [1, 2]},
    )

    run = wait_for_run(run_trigger(job=job).id)

    assert run.state == RunState.SUCCEEDED
    assert run.result == {"greeting": "hello", "n": [1, 2]}
    assert run.worker.startswith("test-worker@")
    assert run.queued_at <= run.started_at
    assert run.started_at <= run.finished_at


def test_failing_run_is_failed_with_error_and_traceback(celery_worker_process):
    job = job_create(
        team=TeamFactory(), name="fail", task_type="dts.fail", args={"message": "disk full"}
    )

    run = wait_for_run(run_trigger(job=job).id)

    assert run.state == RunState.FAILED
    assert run.error == "TaskFailedOnPurpose: disk full"
    assert "Traceback (most recent call last)" in run.traceback
    assert "apps/tasktypes/builtin.py" in run.traceback
    assert run.result is None


def test_a_second_message_for_a_finished_run_does_not_run_it_again(celery_worker_process):
    job = job_create(team=TeamFactory(), name="sleep", task_type="dts.sleep", args={"seconds": 0})
    run = wait_for_run(run_trigger(job=job).id)
    started_at = run.started_at

    app.send_task(EXECUTE_RUN_TASK, args=[str(run.id)], task_id=str(run.id), queue="default")
    follow_up = wait_for_run(run_trigger(job=job).id)

    run.refresh_from_db()
    assert follow_up.state == RunState.SUCCEEDED
    assert (run.state, run.started_at) == (RunState.SUCCEEDED, started_at)


def test_an_unregistered_task_type_can_be_neither_saved_nor_triggered(celery_worker_process):
    with pytest.raises(NotFound, match="not a registered task type"):
        job_create(team=TeamFactory(), name="shell", task_type="os.system", args={})
    legacy = JobFactory(task_type="billing.removed_module", args={})

    with pytest.raises(NotFound, match="not a registered task type"):
        run_trigger(job=legacy)

    assert Run.objects.count() == 0


def test_a_message_naming_a_run_that_does_not_exist_is_dropped(celery_worker_process):
    app.send_task(EXECUTE_RUN_TASK, args=["not-a-run-id"], queue="default")
    job = job_create(team=TeamFactory(), name="after garbage", task_type="dts.noop", args={})

    assert wait_for_run(run_trigger(job=job).id).state == RunState.SUCCEEDED


def test_a_run_past_its_soft_time_limit_is_timed_out(celery_worker_process):
    job = job_create(
        team=TeamFactory(),
        name="slow",
        task_type="dts.sleep",
        args={"seconds": 30},
        soft_timeout_seconds=1,
        hard_timeout_seconds=20,
    )

    run = wait_for_run(run_trigger(job=job).id)

    assert run.state == RunState.TIMED_OUT
    assert run.error == "SoftTimeLimitExceeded"


def test_a_run_with_only_a_hard_time_limit_is_stopped_at_it(celery_worker_process):
    job = job_create(
        team=TeamFactory(),
        name="stuck",
        task_type="dts.sleep",
        args={"seconds": 30},
        hard_timeout_seconds=2,
    )

    run = wait_for_run(run_trigger(job=job).id)

    assert run.state == RunState.TIMED_OUT
    assert "TimeLimitExceeded" in run.error
    assert (run.finished_at - run.started_at).total_seconds() < 10


def test_a_fire_with_cancel_previous_stops_the_running_run(celery_worker_process):
    job = job_create(
        team=TeamFactory(),
        name="exclusive",
        task_type="dts.sleep",
        args={"seconds": 0},
        overlap_policy="cancel_previous",
    )
    previous = run_trigger(job=job, args={"seconds": 60})
    wait_until_state(previous.id, RunState.RUNNING)
    schedule_create(job=job, kind="interval", interval_seconds=1)

    schedules_fire_due(now=timezone.now() + timedelta(seconds=2), batch_size=10)

    assert wait_for_run(previous.id, timeout=20).state == RunState.CANCELLED
    assert Run.objects.filter(job=job, trigger="schedule").exists()


def wait_until_state(run_id, state, timeout=20):
    deadline = time.monotonic() + timeout
    while Run.objects.get(id=run_id).state != state:
        assert time.monotonic() < deadline, f"run {run_id} never reached {state}"
        time.sleep(0.1)


def test_what_a_task_logs_and_prints_is_kept_in_its_run_log(celery_worker_process):
    job = job_create(
        team=TeamFactory(), name="chatty", task_type="tests.operator.chatty", args={"lines": 2}
    )

    run = wait_for_run(run_trigger(job=job).id)

    assert run.state == RunState.SUCCEEDED
    assert [(line.level, line.message) for line in run_log_lines(run_id=run.id)] == [
        ("INFO", "logged line 0"),
        ("INFO", "printed line 0"),
        ("INFO", "logged line 1"),
        ("INFO", "printed line 1"),
        ("WARNING", "multi"),
        ("WARNING", "line"),
    ]


def test_a_cancelled_sleep_in_a_pool_process_stops_on_the_signal_before_the_grace_period(
    celery_worker_process,
):
    job = job_create(
        team=TeamFactory(), name="long sleep", task_type="dts.sleep", args={"seconds": 0}
    )
    run = run_trigger(job=job, args={"seconds": 60})
    wait_until_state(run.id, RunState.RUNNING)

    run_cancel(run=Run.objects.get(id=run.id))
    run = wait_for_run(run.id, timeout=20)

    assert run.state == RunState.CANCELLED
    # The task stopped itself on the signal: its process was not killed.
    assert "SoftTimeLimitExceeded" in run.error
    assert (run.finished_at - run.started_at).total_seconds() < settings.DTS_CANCEL_GRACE_SECONDS
