"""Finding runs that would otherwise never end: run by the scheduler process every few seconds."""

import logging
from datetime import datetime, timedelta

from django.db.models import Q
from django.db.models.functions import Coalesce, Greatest

from apps.runs.execution import run_attempt_lost
from apps.runs.models import Run
from apps.runs.services import runs_publish
from apps.runs.states import EXECUTING_STATES, RunState
from dispatch.broker import broker_waiting_task_ids

logger = logging.getLogger(__name__)


def runs_reap_lost(*, now: datetime, timeout: timedelta) -> int:
    """End the attempt of every run no worker has reported executing for `timeout`: its worker
    died, or its pool process did, or its outcome could not be written. Each then retries or ends
    LOST per its job's policy."""
    silent = (
        Run.objects.filter(state__in=EXECUTING_STATES)
        .alias(seen=Coalesce(Greatest("last_seen_at", "started_at"), "started_at"))
        .filter(seen__lt=now - timeout)
        .values_list("id", "attempt", "worker")
    )
    reaped = 0
    for run_id, attempt, worker in silent:
        reason = f"Worker lost: {worker or 'its worker'} stopped reporting this run for {timeout}."
        reaped += run_attempt_lost(run_id=run_id, attempt=attempt, reason=reason)
    if reaped:
        logger.warning("Declared %d runs lost: their workers stopped reporting them", reaped)
    return reaped


def runs_republish_missing(*, now: datetime, older_than: timedelta, timeout: timedelta) -> int:
    """Publish again the queued runs nobody holds: not waiting in the broker (their publisher died
    before sending, the broker was down, or Redis lost its data) and not reported by any worker's
    heartbeat for `timeout` (the worker that had received them died: Redis would return them only
    after its visibility timeout)."""
    queued = dict(
        Run.objects.filter(
            # A deferred run (next_attempt_at set) is off the broker on purpose.
            state=RunState.QUEUED,
            queued_at__lt=now - older_than,
            next_attempt_at__isnull=True,
        )
        .filter(Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=now - timeout))
        .values_list("id", "queue")
    )
    if not queued:
        return 0
    waiting = broker_waiting_task_ids(set(queued.values()))
    missing = [run_id for run_id in queued if str(run_id) not in waiting]
    if missing:
        logger.warning("Republishing %d queued runs no broker or worker holds", len(missing))
        still_queued = Run.objects.filter(id__in=missing, state=RunState.QUEUED)
        runs_publish(runs=list(still_queued.select_related("job")))
    return len(missing)
