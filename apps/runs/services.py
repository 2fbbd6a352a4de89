import json
import logging
import uuid
from datetime import timedelta
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
PUBLISH_CHUNK = 500


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
        transaction.on_commit(partial(runs_publish, runs=[run]), robust=True)
    return run


def runs_publish(*, runs: list[Run]) -> None:
    """Send each run's Celery message (task id = run id), then record that it was published.

    Messages go out over one producer, in chunks each followed by one UPDATE, so `published_at`
    stays within a chunk's time of the real send. A failed send is not retried in line (kombu's
    retry costs a third of the publish rate): it raises, the runs stay unpublished, and the
    scheduler's sweeper sends them, which also covers a publisher that died.
    """
    for start in range(0, len(runs), PUBLISH_CHUNK):
        chunk = runs[start : start + PUBLISH_CHUNK]
        with app.producer_or_acquire() as producer:
            for run in chunk:
                soft_time_limit, time_limit = run.job.time_limits()
                app.send_task(
                    EXECUTE_RUN_TASK,
                    args=[str(run.id)],
                    task_id=str(run.id),
                    queue=run.queue,
                    soft_time_limit=soft_time_limit,
                    time_limit=time_limit,
                    producer=producer,
                    retry=False,
                )
        # Whatever the runs' states by now (a fast worker may have started one), one UPDATE.
        Run.objects.filter(id__in=[run.id for run in chunk]).update(
            published_at=Coalesce(F("published_at"), Value(timezone.now())),
            state=Case(
                When(state=RunState.PENDING, then=Value(RunState.QUEUED)), default=F("state")
            ),
        )


def runs_publish_stale(*, older_than: timedelta, limit: int = 1000) -> int:
    """Publish runs committed but never published (their publisher crashed or the broker was
    down); a run published twice is still executed once, by the worker's start guard."""
    with transaction.atomic():
        stale = list(
            Run.objects.select_related("job")
            .select_for_update(skip_locked=True, of=("self",))
            .filter(
                state=RunState.PENDING,
                published_at__isnull=True,
                created_at__lt=timezone.now() - older_than,
            )
            .order_by("created_at")[:limit]
        )
        if stale:
            logger.warning("Publishing %d runs that were committed but never published", len(stale))
            runs_publish(runs=stale)
    return len(stale)


def runs_cancel(*, runs: list[Run]) -> None:
    """Cancel runs: those not started end at once; running ones are asked to stop (after commit)
    and end CANCELLED when their worker confirms."""
    now = timezone.now()
    waiting = sources_of(RunState.CANCELLED) - {RunState.CANCELLING}
    Run.objects.filter(id__in=[run.id for run in runs], state__in=waiting).update(
        state=RunState.CANCELLED, finished_at=now
    )
    running = [run.id for run in runs if run.state == RunState.RUNNING]
    Run.objects.filter(id__in=running, state=RunState.RUNNING).update(state=RunState.CANCELLING)

    def revoke() -> None:
        for run_id in running:
            app.control.revoke(str(run_id), terminate=True, signal="SIGTERM")

    transaction.on_commit(revoke, robust=True)


def run_cancel_confirm(*, run_id: RunId) -> bool:
    return run_transition(run_id=run_id, to=RunState.CANCELLED, finished_at=timezone.now())


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
