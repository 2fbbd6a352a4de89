"""A cancel reaches a task executing in a thread of the worker's own process (`make dev`) as a
request it sees at its next check (workers.context), never as a signal to the process; a pool
process of a prefork worker still gets the soft-time-limit signal."""

import os
import threading
import time
from dataclasses import dataclass, field

import pytest
from billiard.pool import SIG_SOFT_TIMEOUT
from celery.exceptions import SoftTimeLimitExceeded
from celery.worker import state as worker_state

from workers.builtin import sleep
from workers.context import (
    RunCancelled,
    cancel_check,
    cancel_requested,
    cancellable_sleep,
    run_cancel_forget,
    run_cancel_request,
    run_context,
)
from workers.control import dts_cancel_run


@dataclass(eq=False)
class ActiveRequest:
    """What dts_cancel_run reads of a Celery request."""

    id: str
    worker_pid: int
    args: list = field(default_factory=list)


@pytest.fixture
def sent_signals(monkeypatch):
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "kill", lambda pid, signum: sent.append((pid, signum)))
    return sent


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


def test_a_task_in_a_thread_of_this_process_is_asked_to_stop_and_the_process_is_not_signalled(
    monkeypatch, sent_signals
):
    request = ActiveRequest(id="run-f", worker_pid=os.getpid(), args=["run-f", 1])
    monkeypatch.setattr(worker_state, "active_requests", {request})

    with run_context("run-f"):
        answer = dts_cancel_run(None, "run-f", 60.0)
        assert cancel_requested()

    assert answer == {"ok": "cancelling run-f"}
    assert sent_signals == []


def test_a_task_in_a_pool_process_gets_the_soft_time_limit_signal(monkeypatch, sent_signals):
    pool_process = os.getpid() + 1
    request = ActiveRequest(id="run-g", worker_pid=pool_process, args=["run-g", 1])
    monkeypatch.setattr(worker_state, "active_requests", {request})

    answer = dts_cancel_run(None, "run-g", 60.0)

    assert answer == {"ok": "cancelling run-g"}
    assert sent_signals == [(pool_process, SIG_SOFT_TIMEOUT)]
    with run_context("run-g"):
        assert not cancel_requested()
