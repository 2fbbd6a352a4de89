"""A cancel reaches a task executing in a thread of the worker's own process (`make dev`) as a
request it sees at its next check (apps.tasktypes.context), never as a signal to the process; a pool
process of a prefork worker still gets the soft-time-limit signal."""

import os
from dataclasses import dataclass, field

import pytest
from billiard.pool import SIG_SOFT_TIMEOUT
from celery.worker import state as worker_state

from apps.tasktypes.context import cancel_requested, run_context
from workers.control import cancel_run


@dataclass(eq=False)
class ActiveRequest:
    """What cancel_run reads of a Celery request."""

    id: str
    worker_pid: int
    args: list = field(default_factory=list)


@pytest.fixture
def sent_signals(monkeypatch):
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "kill", lambda pid, signum: sent.append((pid, signum)))
    return sent


def test_a_task_in_a_thread_of_this_process_is_asked_to_stop_and_the_process_is_not_signalled(
    monkeypatch, sent_signals
):
    request = ActiveRequest(id="run-f", worker_pid=os.getpid(), args=["run-f", 1])
    monkeypatch.setattr(worker_state, "active_requests", {request})

    with run_context("run-f"):
        answer = cancel_run(None, "run-f", 60.0)
        assert cancel_requested()

    assert answer == {"ok": "cancelling run-f"}
    assert sent_signals == []


def test_a_task_in_a_pool_process_gets_the_soft_time_limit_signal(monkeypatch, sent_signals):
    pool_process = os.getpid() + 1
    request = ActiveRequest(id="run-g", worker_pid=pool_process, args=["run-g", 1])
    monkeypatch.setattr(worker_state, "active_requests", {request})

    answer = cancel_run(None, "run-g", 60.0)

    assert answer == {"ok": "cancelling run-g"}
    assert sent_signals == [(pool_process, SIG_SOFT_TIMEOUT)]
    with run_context("run-g"):
        assert not cancel_requested()
