"""Celery signal hooks: each moves a run to its outcome through the run services, nothing more."""

from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.signals import task_failure, task_revoked, task_success

from apps.runs.services import (
    EXECUTE_RUN_TASK,
    run_cancel_confirm,
    run_fail,
    run_succeed,
    run_time_out,
)


@task_success.connect
def record_success(sender: Task | None = None, result: Any = None, **kwargs: Any) -> None:
    if sender is not None and sender.name == EXECUTE_RUN_TASK:
        run_succeed(run_id=str(sender.request.id), result=result)


@task_failure.connect
def record_failure(
    sender: Task | None = None,
    task_id: str = "",
    exception: BaseException | None = None,
    einfo: Any = None,
    **kwargs: Any,
) -> None:
    if sender is None or sender.name != EXECUTE_RUN_TASK:
        return
    error = type(exception).__name__
    detail = str(exception)
    if detail and detail != repr(exception):  # Celery's time-limit errors repeat their own repr
        error = f"{error}: {detail}"
    traceback = str(einfo or "")
    if isinstance(exception, SoftTimeLimitExceeded | TimeLimitExceeded):
        run_time_out(run_id=task_id, error=error, traceback=traceback)
    else:
        run_fail(run_id=task_id, error=error, traceback=traceback)


@task_revoked.connect
def record_cancelled(sender: Task | None = None, request: Any = None, **kwargs: Any) -> None:
    if sender is not None and sender.name == EXECUTE_RUN_TASK and request is not None:
        run_cancel_confirm(run_id=request.id)
