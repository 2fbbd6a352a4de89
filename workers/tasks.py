"""The Celery tasks. Each takes ids, calls run services, and is safe to receive twice."""

import logging
import threading
import uuid
from typing import Any

from billiard.exceptions import WorkerLostError
from celery import Task
from celery.exceptions import Ignore
from celery.worker.request import Request
from django.conf import settings

from apps.runs.logs import run_log_capture
from apps.runs.metrics import ActiveRun, LostDetector
from apps.runs.services.moves import run_attempt_lost, run_start
from apps.tasktypes.context import cancel_check, run_context
from apps.tasktypes.registry import task_type_get
from dispatch.celery import app
from dispatch.messages import EXECUTE_RUN_TASK, run_and_attempt

logger = logging.getLogger(__name__)


class RunRequest(Request):
    """Runs in the worker's main process, which is the one that sees a pool process die."""

    def on_failure(
        self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False
    ) -> None:
        exception = getattr(exc_info.exception, "exc", exc_info.exception)
        if isinstance(exception, WorkerLostError):
            # Record the loss before Celery requeues the message; the redelivery then finds the
            # attempt over and is dropped, and the run retries per its job's policy.
            run_id, attempt = run_and_attempt(self.args)
            run_attempt_lost(
                run_id=run_id,
                attempt=attempt,
                reason=f"Worker lost: {exception}",
                detected_by=LostDetector.WORKER,
            )
        super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)


@app.task(
    name=EXECUTE_RUN_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
    Request=RunRequest,
)
def execute_run(self: Task, run_id: str, attempt: int = 1, limited: bool = True) -> Any:
    """Execute one attempt of a run. Its outcome is recorded by the hooks in workers.signals.
    `limited` says whether its start must check limits (a message without it does)."""
    try:
        parsed_run_id = uuid.UUID(run_id)
    except ValueError:
        raise Ignore() from None
    run = run_start(
        run_id=parsed_run_id,
        attempt=attempt,
        worker=self.request.hostname or "",
        limited=limited,
    )
    if run is None:
        # Already running elsewhere, over, cancelled or unknown: Ignore sends no success or
        # failure signal, so the run's recorded outcome is left as it is.
        raise Ignore()
    with (
        ActiveRun(queue=run.queue),
        run_context(
            str(run.id), job_id=run.job_id, soft_time_limit=_unsignalled_soft_time_limit(self)
        ),
        run_log_capture(run_id=run.id, job_id=run.job_id, attempt=attempt),
    ):
        cancel_check()  # a cancel that came while the run was starting
        return task_type_get(run.task_type).func(**run.args)


def _unsignalled_soft_time_limit(task: Task) -> float | None:
    """The task's soft time limit when no signal will enforce it: Celery's pools signal it to the
    main thread of the process executing the task (prefork's, gevent's and eventlet's), while a
    thread pool's task runs in another thread and gets no signal (apps.tasktypes.context checks
    it)."""
    if threading.current_thread() is threading.main_thread():
        return None
    _, soft = task.request.timelimit or (None, None)
    return soft or task.soft_time_limit


# The hooks are connected here so that they exist in every process that can execute the task.
from workers import control, heartbeat, signals  # noqa: E402, F401
