"""Celery signal hooks: each ends a run's attempt through the run services, nothing more.

They run in the process that executed the task, before it hands its result to the worker's main
process, which acknowledges the message only then: an attempt's end is written before its message
is acknowledged. A pool process killed after its task ended leaves its run recorded as it ended
(docs/runs.md)."""

from typing import Any, TypeGuard

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.signals import task_failure, task_revoked, task_success, worker_process_shutdown

from apps.live.broadcast import live_sender_drain
from apps.runs.services.moves import run_attempt_end, run_cancel_confirm
from apps.runs.states import RunState
from dispatch.messages import EXECUTE_RUN_TASK, run_and_attempt


def _is_run_task(sender: Task | None) -> TypeGuard[Task]:
    return sender is not None and sender.name == EXECUTE_RUN_TASK


@task_success.connect
def record_success(sender: Task | None = None, result: Any = None, **kwargs: Any) -> None:
    if _is_run_task(sender):
        run_id, attempt = run_and_attempt(sender.request.args)
        run_attempt_end(run_id=run_id, attempt=attempt, outcome=RunState.SUCCEEDED, result=result)


@task_failure.connect
def record_failure(
    sender: Task | None = None,
    args: Any = None,
    exception: BaseException | None = None,
    einfo: Any = None,
    **kwargs: Any,
) -> None:
    if not _is_run_task(sender) or not args:
        return

    run_id, attempt = run_and_attempt(args)
    error = type(exception).__name__
    detail = str(exception)
    if detail and detail != repr(exception):  # Celery's time-limit errors repeat their own repr
        error = f"{error}: {detail}"
    timed_out = isinstance(exception, SoftTimeLimitExceeded | TimeLimitExceeded)
    run_attempt_end(
        run_id=run_id,
        attempt=attempt,
        outcome=RunState.TIMED_OUT if timed_out else RunState.FAILED,
        error=error,
        traceback=str(einfo or ""),
    )


@task_revoked.connect
def record_cancelled(sender: Task | None = None, request: Any = None, **kwargs: Any) -> None:
    if _is_run_task(sender) and request is not None and request.args:
        run_id, attempt = run_and_attempt(request.args)
        run_cancel_confirm(run_id=run_id, attempt=attempt)


@worker_process_shutdown.connect
def live_messages_push(**kwargs: Any) -> None:
    """A prefork pool process ends with `os._exit`, without atexit: push its last live messages
    (of the endings it just wrote) first."""
    live_sender_drain()
