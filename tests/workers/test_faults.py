"""Fault tests with real processes: pool processes and workers killed, poison pills, cancels.

Each test starts its own workers on the "faults" queue (the other tests' worker never sees these
runs) and a scheduler (which publishes retries and reaps lost runs), with short heartbeats.
"""

import signal
import time

import psutil
import pytest

from apps.core.exceptions import InvalidTransition
from apps.runs.models import Run
from apps.runs.services.build import run_trigger
from apps.runs.services.moves import run_cancel
from apps.runs.states import RunState
from tests.conftest import wait_for_run
from tests.workers.conftest import (
    FAST,
    executions,
    job,
    pool_process,
    wait_for_executions,
    wait_for_state,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def test_a_failing_run_is_retried_with_backoff_until_it_succeeds(cluster):
    cluster.worker("retry")
    cluster.scheduler()
    flaky = job(
        "flaky",
        "tests.ledger.flaky",
        {"key": "flaky", "failures": 2},
        max_attempts=3,
        retry_backoff_seconds=1,
        retry_jitter=False,
    )

    run = wait_for_run(run_trigger(job=flaky).id, timeout=30)

    assert (run.state, run.attempt, run.result) == (RunState.SUCCEEDED, 3, 3)
    attempts = list(run.attempts.values_list("number", "outcome", "error"))
    assert attempts == [
        (1, RunState.FAILED, "RuntimeError: failure 1 of 2"),
        (2, RunState.FAILED, "RuntimeError: failure 2 of 2"),
        (3, RunState.SUCCEEDED, ""),
    ]
    first, second, _ = run.attempts.all()
    assert (second.started_at - first.finished_at).total_seconds() >= 1


def test_a_killed_pool_process_ends_a_non_idempotent_run_lost_without_running_it_again(cluster):
    worker = cluster.worker("kill-child")
    cluster.scheduler()
    once = job("once", "tests.ledger.record", {"key": "once", "seconds": 10}, max_attempts=1)
    run = run_trigger(job=once)
    wait_for_state(run.id, RunState.RUNNING)
    wait_for_executions("once", 1)

    pool_process(worker).send_signal(signal.SIGKILL)

    run = wait_for_run(run.id, timeout=30)
    assert run.state == RunState.LOST
    assert "Worker lost" in run.error
    time.sleep(2)  # the requeued message has come back and been refused
    assert executions("once") == 1


def test_a_killed_pool_process_reruns_an_idempotent_job_at_once(cluster):
    worker = cluster.worker("kill-idempotent")
    cluster.scheduler()
    again = job("again", "tests.ledger.record", {"key": "again", "seconds": 3}, idempotent=True)
    run = run_trigger(job=again)
    wait_for_state(run.id, RunState.RUNNING)
    wait_for_executions("again", 1)

    pool_process(worker).send_signal(signal.SIGKILL)

    run = wait_for_run(run.id, timeout=30)
    assert run.state == RunState.SUCCEEDED
    assert list(run.attempts.values_list("outcome", flat=True)) == [
        RunState.LOST,
        RunState.SUCCEEDED,
    ]
    assert executions("again") == 2


def test_a_pool_process_killed_after_its_run_succeeded_leaves_the_run_succeeded(cluster):
    # Killed after Celery's success hooks ran and before its main process got the result (and
    # acknowledged the message): the success is already written, and stays; nothing runs again.
    worker = cluster.worker("kill-after-success")
    cluster.scheduler()
    once = job("dies", "tests.ledger.dies_after_success", {"key": "dies"}, max_attempts=1)
    pid = pool_process(worker).pid

    run = wait_for_run(run_trigger(job=once).id, timeout=30)

    assert run.state == RunState.SUCCEEDED
    deadline = time.monotonic() + 30
    while [child.pid for child in psutil.Process(worker.pid).children()] in ([], [pid]):
        assert time.monotonic() < deadline, "the killed pool process was not replaced"
        time.sleep(0.1)
    time.sleep(2)  # the message has come back and been refused
    run.refresh_from_db()
    assert (run.state, run.attempt, executions("dies")) == (RunState.SUCCEEDED, 1, 1)
    assert list(run.attempts.values_list("outcome", flat=True)) == [RunState.SUCCEEDED]


def test_a_poison_pill_ends_after_its_attempts_while_other_runs_keep_flowing(cluster):
    cluster.worker("poison", concurrency=2)
    cluster.scheduler()
    pill = job(
        "pill", "tests.ledger.suicide", {"key": "pill"}, max_attempts=2, retry_backoff_seconds=1
    )
    healthy = job("healthy", "tests.ledger.record", {"key": "healthy"})

    pill_run = run_trigger(job=pill)
    healthy_runs = [run_trigger(job=healthy) for _ in range(5)]

    assert wait_for_run(pill_run.id, timeout=40).state == RunState.LOST
    assert [wait_for_run(run.id).state for run in healthy_runs] == [RunState.SUCCEEDED] * 5
    time.sleep(2)
    assert executions("pill") == 2


def test_a_killed_worker_is_noticed_and_its_run_retried_on_another(cluster):
    doomed = cluster.worker("doomed")
    cluster.scheduler()
    long_job = job(
        "long",
        "tests.ledger.record",
        {"key": "long", "seconds": 4},
        max_attempts=2,
        retry_backoff_seconds=1,
    )
    run = run_trigger(job=long_job)
    wait_for_state(run.id, RunState.RUNNING)

    for process in [
        *psutil.Process(doomed.pid).children(recursive=True),
        psutil.Process(doomed.pid),
    ]:
        process.kill()
    cluster.worker("survivor")

    run = wait_for_run(run.id, timeout=60)
    assert run.state == RunState.SUCCEEDED
    attempts = list(run.attempts.values_list("outcome", "worker"))
    assert attempts[0][0] == RunState.LOST
    assert attempts[1][0] == RunState.SUCCEEDED
    assert attempts[1][1].startswith("survivor@")


def test_cancelling_a_running_sleep_stops_it_within_the_grace_period(cluster):
    cluster.worker("cancel")
    sleeper = job("sleeper", "dts.sleep", {"seconds": 600})
    run = wait_for_state(run_trigger(job=sleeper).id, RunState.RUNNING)

    cancelled_at = time.monotonic()
    run_cancel(run=run)

    run = wait_for_run(run.id, timeout=10)
    assert run.state == RunState.CANCELLED
    assert time.monotonic() - cancelled_at < float(FAST["DTS_CANCEL_GRACE_SECONDS"]) + 2


def test_a_task_that_ignores_its_cancel_is_killed_after_the_grace_period(cluster):
    worker = cluster.worker("stubborn")
    stubborn = job("stubborn", "tests.ledger.stubborn", {"key": "stubborn", "seconds": 600})
    run = wait_for_state(run_trigger(job=stubborn).id, RunState.RUNNING)
    child = pool_process(worker)

    run_cancel(run=run)

    run = wait_for_run(run.id, timeout=15)
    assert run.state == RunState.CANCELLED
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_a_queued_run_that_is_cancelled_never_starts(cluster):
    blocker = job("blocker", "dts.sleep", {"seconds": 3})
    waiting = job("waiting", "tests.ledger.record", {"key": "waiting"})
    run_trigger(job=blocker)
    queued = run_trigger(job=waiting)

    run_cancel(run=queued)
    cluster.worker("late")

    time.sleep(5)
    queued.refresh_from_db()
    assert queued.state == RunState.CANCELLED
    assert executions("waiting") == 0


def test_cancelling_a_finished_run_is_refused(cluster):
    done = Run.objects.create(
        job=job("done", "dts.noop", {}),
        trigger="manual",
        task_type="dts.noop",
        args={},
        state="succeeded",
    )

    with pytest.raises(InvalidTransition, match="already succeeded"):
        run_cancel(run=done)


def test_a_backoff_longer_than_the_visibility_timeout_runs_each_attempt_once(cluster):
    # dts never gives Celery a countdown: the 4 s backoff, longer than the broker's 2 s visibility
    # timeout, waits in PostgreSQL and the retry is published when due.
    cluster.worker("short-visibility", concurrency=2, env={"DTS_BROKER_VISIBILITY_TIMEOUT": "2"})
    cluster.scheduler()
    slow = job(
        "slow",
        "tests.ledger.flaky",
        {"key": "slow", "failures": 1, "seconds": 6},
        max_attempts=2,
        retry_backoff_seconds=4,
        retry_jitter=False,
    )

    run = wait_for_run(run_trigger(job=slow).id, timeout=60)

    assert (run.state, run.attempt) == (RunState.SUCCEEDED, 2)
    assert executions("slow") == 2  # one per attempt


def test_waiting_runs_start_by_priority(cluster):
    low = job("low", "tests.ledger.record", {"key": "low"}, priority=1)
    high = job("high", "tests.ledger.record", {"key": "high"}, priority=8)
    queued = [run_trigger(job=low) for _ in range(3)] + [run_trigger(job=high) for _ in range(3)]
    time.sleep(1)  # all six wait in the broker before any worker takes one

    cluster.worker("priorities")

    finished = [wait_for_run(run.id) for run in queued]
    order = [run.job.name for run in sorted(finished, key=lambda run: run.started_at)]
    assert order == ["high"] * 3 + ["low"] * 3
