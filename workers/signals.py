"""Celery signal hooks: each ends a run's attempt through the run services, nothing more. In a
pool process the write is made by its background thread (workers.background)."""

from typing import Any, TypeGuard

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.signals import task_failure, task_revoked, task_success

from apps.runs.services.moves import run_attempt_end, run_cancel_confirm
from apps.runs.states import RunState
from dispatch.messages import EXECUTE_RUN_TASK, run_and_attempt
from workers.background import in_background


def _is_run_task(sender: Task | None) -> TypeGuard[Task]:
    return sender is not None and sender.name == EXECUTE_RUN_TASK


@task_success.connect
def record_success(sender: Task | None = None, result: Any = None, **kwargs: Any) -> None:
    if _is_run_task(sender):
        run_id, attempt = run_and_attempt(sender.request.args)
        in_background(
            run_attempt_end,
            run_id=run_id,
            attempt=attempt,
            outcome=RunState.SUCCEEDED,
            result=result,
        )


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
    in_background(
        run_attempt_end,
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
