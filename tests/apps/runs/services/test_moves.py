"""The worker side of a run: starting an attempt, and how each outcome ends or retries it."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.runs.metrics import LostDetector
from apps.runs.models import Run, RunAttempt
from apps.runs.services.moves import (
    MAX_LOST_REEXECUTIONS,
    run_attempt_end,
    run_attempt_lost,
    run_cancel_confirm,
    run_start,
)
from apps.runs.states import RunState
from tests.factories import JobFactory, RunFactory

pytestmark = pytest.mark.django_db


def started(job=None, **job_fields):
    run = RunFactory(job=job or JobFactory(**job_fields), state=RunState.QUEUED)
    assert run_start(run_id=run.id, attempt=run.attempt, worker="worker-a") is not None
    run.refresh_from_db()
    return run


def test_an_attempt_starts_once_and_a_redelivered_message_is_refused():
    run = RunFactory(state=RunState.QUEUED)

    first = run_start(run_id=run.id, attempt=1, worker="worker-a")
    second = run_start(run_id=run.id, attempt=1, worker="worker-b")

    assert (first.id, first.job_id, first.task_type, first.args) == (
        run.id,
        run.job_id,
        run.task_type,
        run.args,
    )
    assert second is None
    run.refresh_from_db()
    assert (run.state, run.worker, run.started_at is not None) == (
        RunState.RUNNING,
        "worker-a",
        True,
    )
    # The attempt's row is written when it ends; until then the run says where it executes.
    assert not RunAttempt.objects.filter(run=run).exists()


@pytest.mark.parametrize("limited", [True, False])
def test_a_run_starts_once_whether_or_not_limits_are_checked(limited):
    run = RunFactory(state=RunState.QUEUED)

    first = run_start(run_id=run.id, attempt=1, worker="worker-a", limited=limited)
    again = run_start(run_id=run.id, attempt=1, worker="worker-b", limited=limited)

    assert (first.id, again) == (run.id, None)
    assert Run.objects.get(id=run.id).worker == "worker-a"


def test_a_run_no_limit_applies_to_starts_in_one_statement(django_assert_num_queries):
    job = JobFactory()
    first, run = RunFactory(job=job), RunFactory(job=job)
    # The session's first start also prepares the statement (apps.core.db.execute_prepared), and a
    # process's first run of a job reads the job's team (apps.live.broadcast.jobs_team_ids).
    assert run_start(run_id=first.id, attempt=1, worker="worker-a", limited=False) is not None

    with django_assert_num_queries(1):
        assert run_start(run_id=run.id, attempt=1, worker="worker-a", limited=False) is not None


def test_a_success_is_recorded_in_one_statement(django_assert_num_queries):
    job = JobFactory()
    first, run = started(job), started(job)
    assert run_attempt_end(run_id=first.id, attempt=1, outcome=RunState.SUCCEEDED)

    with django_assert_num_queries(1):
        assert run_attempt_end(run_id=run.id, attempt=1, outcome=RunState.SUCCEEDED)


def test_a_stale_message_of_an_earlier_attempt_is_refused():
    run = RunFactory(state=RunState.QUEUED, attempt=3)

    assert run_start(run_id=run.id, attempt=2, worker="worker-a") is None
    assert run_start(run_id=uuid.uuid4(), attempt=1, worker="worker-a") is None


def test_success_stores_the_result_and_closes_the_attempt():
    run = started()

    assert run_attempt_end(run_id=run.id, attempt=1, outcome=RunState.SUCCEEDED, result={"n": 1})

    run.refresh_from_db()
    attempt = run.attempts.get()
    assert (run.state, run.result, attempt.outcome) == (
        RunState.SUCCEEDED,
        {"n": 1},
        RunState.SUCCEEDED,
    )
    assert (attempt.worker, attempt.started_at, attempt.finished_at) == (
        "worker-a",
        run.started_at,
        run.finished_at,
    )


def test_a_late_duplicate_success_signal_cannot_rewrite_a_failed_run():
    run = started()
    run_attempt_end(run_id=run.id, attempt=1, outcome=RunState.FAILED, error="ValueError: boom")

    assert not run_attempt_end(
        run_id=run.id, attempt=1, outcome=RunState.SUCCEEDED, result={"late": 1}
    )

    run.refresh_from_db()
    assert (run.state, run.result, run.error) == (RunState.FAILED, None, "ValueError: boom")


def test_a_result_that_is_not_json_fails_the_run_with_the_reason():
    run = started()

    run_attempt_end(
        run_id=run.id, attempt=1, outcome=RunState.SUCCEEDED, result={"handle": object()}
    )

    run.refresh_from_db()
    assert run.state == RunState.FAILED
    assert "cannot be stored as JSON" in run.error


@pytest.mark.parametrize("outcome", [RunState.FAILED, RunState.TIMED_OUT])
def test_a_failed_attempt_is_retried_after_its_backoff_while_attempts_remain(outcome):
    run = started(max_attempts=3, retry_backoff_seconds=10, retry_jitter=False)
    before = timezone.now()

    run_attempt_end(run_id=run.id, attempt=1, outcome=outcome, error="boom")

    run.refresh_from_db()
    assert (run.state, run.attempt, run.error) == (RunState.RETRYING, 2, "boom")
    assert (
        before + timedelta(seconds=10)
        <= run.next_attempt_at
        <= timezone.now() + timedelta(seconds=10)
    )
    assert run.attempts.get(number=1).outcome == outcome


def test_the_last_attempt_ends_the_run():
    run = started(max_attempts=2, retry_jitter=False)
    run_attempt_end(run_id=run.id, attempt=1, outcome=RunState.FAILED, error="first")
    run.refresh_from_db()
    run.state = RunState.QUEUED
    run.save()
    run_start(run_id=run.id, attempt=2, worker="worker-b")

    run_attempt_end(run_id=run.id, attempt=2, outcome=RunState.FAILED, error="second")

    run.refresh_from_db()
    assert (run.state, run.attempt, run.error) == (RunState.FAILED, 2, "second")
    assert [(a.number, a.outcome, a.worker) for a in run.attempts.all()] == [
        (1, RunState.FAILED, "worker-a"),
        (2, RunState.FAILED, "worker-b"),
    ]


def test_a_lost_attempt_of_a_non_idempotent_job_ends_lost_without_retries():
    run = started(max_attempts=1)

    run_attempt_lost(
        run_id=run.id, attempt=1, reason="Worker lost: signal 9", detected_by=LostDetector.WORKER
    )

    run.refresh_from_db()
    assert (run.state, run.error) == (RunState.LOST, "Worker lost: signal 9")


def test_a_lost_attempt_of_a_non_idempotent_job_follows_its_retry_policy():
    run = started(max_attempts=2, retry_backoff_seconds=30, retry_jitter=False)

    run_attempt_lost(
        run_id=run.id, attempt=1, reason="Worker lost", detected_by=LostDetector.WORKER
    )

    run.refresh_from_db()
    assert (run.state, run.attempt) == (RunState.RETRYING, 2)
    assert run.next_attempt_at >= timezone.now() + timedelta(seconds=29)


def test_a_lost_attempt_of_an_idempotent_job_is_re_executed_at_once_but_not_forever():
    run = started(max_attempts=1, idempotent=True)

    for attempt in range(1, MAX_LOST_REEXECUTIONS + 2):
        run_attempt_lost(
            run_id=run.id, attempt=attempt, reason="Worker lost", detected_by=LostDetector.WORKER
        )
        run.refresh_from_db()
        if run.state != RunState.RETRYING:
            break
        assert run.next_attempt_at <= timezone.now()
        run.state = RunState.QUEUED
        run.save()
        run_start(run_id=run.id, attempt=run.attempt, worker="worker-a")

    assert (run.state, attempt) == (RunState.LOST, MAX_LOST_REEXECUTIONS + 1)


def test_a_cancelled_attempt_is_never_retried():
    run = started(max_attempts=5)
    run.state = RunState.CANCELLING
    run.save()

    run_cancel_confirm(run_id=run.id, attempt=1)

    run.refresh_from_db()
    assert run.state == RunState.CANCELLED


def test_an_attempt_stopped_by_its_cancel_is_recorded_cancelled_not_timed_out():
    run = started(max_attempts=5)
    run.state = RunState.CANCELLING
    run.save()

    # A cancelled task raises the soft-time-limit exception: the failure hook reports a timeout.
    run_attempt_end(run_id=run.id, attempt=1, outcome=RunState.TIMED_OUT, error="cancelled")

    run.refresh_from_db()
    assert run.state == RunState.CANCELLED
    assert list(run.attempts.values_list("outcome", flat=True)) == [RunState.CANCELLED]


def test_a_run_being_cancelled_whose_worker_is_lost_ends_cancelled():
    run = started(max_attempts=5)
    run.state = RunState.CANCELLING
    run.save()

    run_attempt_lost(
        run_id=run.id, attempt=1, reason="Worker lost", detected_by=LostDetector.WORKER
    )

    run.refresh_from_db()
    assert run.state == RunState.CANCELLED
    assert list(run.attempts.values_list("outcome", flat=True)) == [RunState.CANCELLED]


@pytest.mark.parametrize(
    ("attempt", "fraction", "seconds"),
    [(1, 0.0, 5), (1, 0.999, 9.995), (2, 0.0, 10), (3, 0.5, 30), (20, 0.0, 50)],
)
def test_retry_delay_doubles_up_to_its_cap_with_jitter_in_the_upper_half(
    attempt, fraction, seconds
):
    job = JobFactory.build(
        retry_backoff_seconds=10, retry_backoff_max_seconds=100, retry_jitter=True
    )

    assert job.retry_delay(failed_attempt=attempt, random_fraction=fraction) == timedelta(
        seconds=seconds
    )
