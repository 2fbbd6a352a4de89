"""What a task can know about the run it executes, and how a cancel reaches it where no signal can.

A prefork worker stops a cancelled run by sending its pool process the soft-time-limit signal
(workers.control): the task gets SoftTimeLimitExceeded wherever it is. A worker whose tasks run in
threads of its own process (the thread pool of `make dev`) cannot signal one thread, so the cancel
is a request that the task sees at its next check: `cancel_check`, `cancel_requested` or
`cancellable_sleep` (which dts.sleep uses). Nor does such a pool enforce time limits: there the
checks also raise SoftTimeLimitExceeded once the run's soft limit has passed. Under prefork the
checks never find a request or a limit (the signal comes first) and cost nothing."""

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from celery.exceptions import SoftTimeLimitExceeded


class RunCancelled(SoftTimeLimitExceeded):
    """Raised by a check in a task whose run was cancelled. A SoftTimeLimitExceeded, so a task
    that cleans up on a production cancel does the same here."""

    def __str__(self) -> str:
        return "The run was cancelled."


_current_run_id: ContextVar[str | None] = ContextVar("dts_current_run_id", default=None)
_current_job_id: ContextVar[int | None] = ContextVar("dts_current_job_id", default=None)
_current_cancel: ContextVar[threading.Event | None] = ContextVar("dts_current_cancel", default=None)
# When the run's soft time limit passes (time.monotonic), where no signal enforces it.
_soft_deadline: ContextVar[float | None] = ContextVar("dts_soft_deadline", default=None)
# The cancel request of each run executing in this process, by run id; a request may come before
# the task enters its run context (between its message's acceptance and its start).
_cancels: dict[str, threading.Event] = {}
_cancels_lock = threading.Lock()


def current_run_id() -> str | None:
    """The id of the run whose task is executing in this context, or None outside a run."""
    return _current_run_id.get()


def cancel_requested() -> bool:
    """Whether the run executing in this context was asked to stop at its next check."""
    cancel = _current_cancel.get()
    return cancel is not None and cancel.is_set()


def cancel_check() -> None:
    """Raise RunCancelled if the run executing in this context was asked to stop, or
    SoftTimeLimitExceeded if its soft time limit has passed (where no signal enforces it). A long
    task calls this between steps, so that a cancel or a time limit in `make dev` stops it there."""
    if cancel_requested():
        raise RunCancelled()
    deadline = _soft_deadline.get()
    if deadline is not None and time.monotonic() >= deadline:
        raise SoftTimeLimitExceeded()


def cancellable_sleep(seconds: float) -> None:
    """Sleep, or stop as cancel_check does as soon as the run is cancelled or its soft time limit
    passes."""
    cancel = _current_cancel.get()
    deadline = _soft_deadline.get()
    if deadline is not None:
        seconds = min(seconds, max(0.0, deadline - time.monotonic()))
    if cancel is None:
        time.sleep(seconds)
    else:
        cancel.wait(seconds)
    cancel_check()


def run_cancel_request(run_id: str) -> None:
    """Ask the task of run `run_id`, executing (or about to) in a thread of this process, to stop
    at its next check."""
    with _cancels_lock:
        _cancels.setdefault(run_id, threading.Event()).set()


def run_cancel_forget(run_id: str) -> None:
    """Drop the cancel request of a run whose task is no longer executing in this process."""
    with _cancels_lock:
        _cancels.pop(run_id, None)


@contextmanager
def run_context(
    run_id: str, *, job_id: int | None = None, soft_time_limit: float | None = None
) -> Iterator[None]:
    """Execute the task of run `run_id` (of job `job_id`) in this context. `soft_time_limit`:
    seconds from now after which the checks raise SoftTimeLimitExceeded, for a pool that does not
    signal it."""
    with _cancels_lock:
        cancel = _cancels.setdefault(run_id, threading.Event())
    deadline = None if soft_time_limit is None else time.monotonic() + soft_time_limit
    run_token = _current_run_id.set(run_id)
    job_token = _current_job_id.set(job_id)
    cancel_token = _current_cancel.set(cancel)
    deadline_token = _soft_deadline.set(deadline)
    try:
        yield
    finally:
        _soft_deadline.reset(deadline_token)
        _current_cancel.reset(cancel_token)
        _current_job_id.reset(job_token)
        _current_run_id.reset(run_token)
        run_cancel_forget(run_id)


class RunContextFilter(logging.Filter):
    """Adds to every record the run and job whose task executes in its context (None outside a
    run), for the JSON process logs (DTS_LOG_FORMAT=json, docs/logs.md)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = _current_run_id.get()
        record.job_id = _current_job_id.get()
        return True
