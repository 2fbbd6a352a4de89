import json
import logging
import uuid
from functools import partial
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Case, F, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.jobs.models import Job
from apps.runs.models import Run, RunTrigger
from apps.runs.states import RunState, sources_of
from workers.celery import app
from workers.registry import task_args_validate

logger = logging.getLogger(__name__)

EXECUTE_RUN_TASK = "dts.execute_run"
RunId = uuid.UUID | str


def run_transition(*, run_id: RunId, to: RunState, **fields: Any) -> bool:
    """Move the run to `to` only if its current state allows it; say whether it moved.

    The check and the write are one UPDATE, so two workers or a late signal racing on the same run
    cannot both win, and a run in a terminal state never changes again.
    """
    moved = Run.objects.filter(id=run_id, state__in=sources_of(to)).update(state=to, **fields)
    if not moved:
        logger.info("Run %s was not moved to %s: its state does not allow it", run_id, to)
    return moved == 1


def run_trigger(
    *, job: Job, trigger: RunTrigger = RunTrigger.MANUAL, args: dict[str, Any] | None = None
) -> Run:
    """Record a new run of `job` and publish it to the broker once the record is committed."""
    run_args = job.args if args is None else args
    task_args_validate(task_type_name=job.task_type, args=run_args)
    with transaction.atomic():
        run = Run.objects.create(
            job=job, trigger=trigger, task_type=job.task_type, args=run_args, queue=job.queue
        )
        # robust: the run is committed whatever the broker says; one that was never published
        # stays PENDING with no published_at, which is what the sweeper looks for.
        transaction.on_commit(partial(run_publish, run=run), robust=True)
    return run


def run_publish(*, run: Run) -> None:
    """Send the run's Celery message (task id = run id), then record that it was published."""
    soft_time_limit, time_limit = run.job.time_limits()
    app.send_task(
        EXECUTE_RUN_TASK,
        args=[str(run.id)],
        task_id=str(run.id),
        queue=run.queue,
        soft_time_limit=soft_time_limit,
        time_limit=time_limit,
    )
    # One UPDATE whatever the run's state by now: a fast worker may already have started it.
    Run.objects.filter(id=run.id).update(
        published_at=Coalesce(F("published_at"), Value(timezone.now())),
        state=Case(When(state=RunState.PENDING, then=Value(RunState.QUEUED)), default=F("state")),
    )


def run_start(*, run_id: RunId, worker: str) -> Run | None:
    """Claim the run for execution; None when it is already running, finished or unknown, so a
    redelivered message never executes a run twice."""
    if not run_transition(
        run_id=run_id, to=RunState.RUNNING, worker=worker, started_at=timezone.now()
    ):
        return None
    return Run.objects.get(id=run_id)


def run_succeed(*, run_id: RunId, result: Any) -> bool:
    try:
        json.dumps(result, cls=DjangoJSONEncoder)
    except (TypeError, ValueError) as error:
        return run_fail(
            run_id=run_id,
            error=f"The task's result cannot be stored as JSON: {error}",
            traceback="",
        )
    return run_transition(
        run_id=run_id, to=RunState.SUCCEEDED, result=result, finished_at=timezone.now()
    )


def run_fail(*, run_id: RunId, error: str, traceback: str) -> bool:
    return run_transition(
        run_id=run_id,
        to=RunState.FAILED,
        error=error,
        traceback=traceback,
        finished_at=timezone.now(),
    )


def run_time_out(*, run_id: RunId, error: str, traceback: str) -> bool:
    return run_transition(
        run_id=run_id,
        to=RunState.TIMED_OUT,
        error=error,
        traceback=traceback,
        finished_at=timezone.now(),
    )
