"""What a task can know about the run it executes, and how a cancel reaches it where no signal can.

A prefork worker stops a cancelled run by sending its pool process the soft-time-limit signal
(workers.control): the task gets SoftTimeLimitExceeded wherever it is. A worker whose tasks run in
threads of its own process (the thread pool of `make dev`) cannot signal one thread, so the cancel
is a request that the task sees at its next check: `cancel_check`, `cancel_requested` or
`cancellable_sleep` (which dts.sleep uses). Those checks cost nothing under prefork, where they
never find a request."""

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
_current_cancel: ContextVar[threading.Event | None] = ContextVar("dts_current_cancel", default=None)
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
    """Raise RunCancelled if the run executing in this context was asked to stop. A long task
    calls this between steps, so that a cancel in `make dev` stops it there."""
    if cancel_requested():
        raise RunCancelled()


def cancellable_sleep(seconds: float) -> None:
    """Sleep, or raise RunCancelled as soon as the run executing in this context is cancelled."""
    cancel = _current_cancel.get()
    if cancel is None:
        time.sleep(seconds)
    elif cancel.wait(seconds):
        raise RunCancelled()


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
def run_context(run_id: str) -> Iterator[None]:
    with _cancels_lock:
        cancel = _cancels.setdefault(run_id, threading.Event())
    run_token = _current_run_id.set(run_id)
    cancel_token = _current_cancel.set(cancel)
    try:
        yield
    finally:
        _current_cancel.reset(cancel_token)
        _current_run_id.reset(run_token)
        run_cancel_forget(run_id)
