"""The Celery tasks. Each takes ids, calls run services, and is safe to receive twice."""

import uuid
from typing import Any

from celery import Task
from celery.exceptions import Ignore
from django.conf import settings

from apps.runs.services import EXECUTE_RUN_TASK, run_start
from workers.celery import app
from workers.registry import task_type_get


@app.task(
    name=EXECUTE_RUN_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
)
def execute_run(self: Task, run_id: str) -> Any:
    """Execute one run. Its outcome is recorded by the signal hooks in workers.signals."""
    try:
        parsed_run_id = uuid.UUID(run_id)
    except ValueError:
        raise Ignore() from None
    run = run_start(run_id=parsed_run_id, worker=self.request.hostname or "")
    if run is None:
        # Already running elsewhere, finished, cancelled or unknown: Ignore sends no success or
        # failure signal, so the run's recorded outcome is left as it is.
        raise Ignore()
    return task_type_get(run.task_type).func(**run.args)


# The hooks are connected here so that they exist in every process that can execute the task.
from workers import signals  # noqa: E402, F401
