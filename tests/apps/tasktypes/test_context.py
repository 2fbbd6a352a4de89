"""What a task knows of its run (apps.tasktypes.context): a cancel, or a soft time limit no signal
enforces (a thread pool's, as in `make dev`), stops it at its next check."""

import threading
import time

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from apps.tasktypes.builtin import sleep
from apps.tasktypes.context import (
    RunCancelled,
    cancel_check,
    cancel_requested,
    cancellable_sleep,
    run_cancel_forget,
    run_cancel_request,
    run_context,
)


def test_the_sleep_task_stops_at_once_when_its_run_is_cancelled():
    with run_context("run-a"):
        threading.Timer(0.2, run_cancel_request, args=("run-a",)).start()
        started = time.monotonic()
        with pytest.raises(RunCancelled):
            sleep(seconds=60)

    assert time.monotonic() - started < 10


def test_a_cancel_sent_before_the_task_enters_its_run_context_is_seen_there():
    run_cancel_request("run-b")

    with run_context("run-b"):
        assert cancel_requested()
        with pytest.raises(RunCancelled):
            cancel_check()


def test_a_cancel_reaches_only_its_own_run():
    run_cancel_request("run-c")
    try:
        with run_context("run-d"):
            cancel_check()
            cancellable_sleep(0.01)
            assert not cancel_requested()
    finally:
        run_cancel_forget("run-c")


def test_a_run_context_forgets_its_cancel_when_it_ends():
    with run_context("run-e"):
        run_cancel_request("run-e")

    with run_context("run-e"):
        assert not cancel_requested()


def test_outside_a_run_the_checks_find_no_cancel():
    assert not cancel_requested()
    cancel_check()
    cancellable_sleep(0.01)


def test_a_cancel_is_a_soft_time_limit_to_the_task_as_in_production():
    with pytest.raises(SoftTimeLimitExceeded, match=r"^The run was cancelled\.$"):
        raise RunCancelled()


def test_past_its_soft_time_limit_the_sleep_task_stops_timed_out_not_cancelled():
    with run_context("run-h", soft_time_limit=0.2):
        started = time.monotonic()
        with pytest.raises(SoftTimeLimitExceeded) as stopped:
            sleep(seconds=60)

    assert not isinstance(stopped.value, RunCancelled)
    assert 0.2 <= time.monotonic() - started < 10


def test_past_its_soft_time_limit_every_check_raises():
    with run_context("run-i", soft_time_limit=0.0):
        with pytest.raises(SoftTimeLimitExceeded):
            cancel_check()
        with pytest.raises(SoftTimeLimitExceeded):
            cancellable_sleep(0)


def test_within_its_soft_time_limit_a_run_sleeps_its_whole_time():
    with run_context("run-j", soft_time_limit=60):
        started = time.monotonic()
        cancellable_sleep(0.2)
        cancel_check()

    assert time.monotonic() - started >= 0.2


def test_a_cancel_within_the_soft_time_limit_is_a_cancel():
    with run_context("run-k", soft_time_limit=60):
        run_cancel_request("run-k")
        with pytest.raises(RunCancelled):
            cancellable_sleep(30)
