"""Keeping runs from getting stuck, and removing what is past its keeping: run by the scheduler
process (the reaper every few seconds, retention every hour), from the heartbeats workers send."""

import logging
from datetime import datetime, timedelta

from django.db.models import Q
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from apps.runs.metrics import LostDetector
from apps.runs.models import Run, Worker
from apps.runs.services.moves import run_attempt_lost
from apps.runs.services.publish import runs_publish_on_commit
from apps.runs.states import EXECUTING_STATES, TERMINAL_STATES, RunState, sources_of
from dispatch.broker import broker_waiting_task_ids

logger = logging.getLogger(__name__)

DELETE_BATCH = 1000


def worker_heartbeat(
    *,
    hostname: str,
    pid: int,
    queues: list[str],
    concurrency: int,
    started_at: datetime,
    active_run_ids: list[str],
    reserved_run_ids: list[str],
) -> None:
    """Record the worker alive, executing `active_run_ids` and holding `reserved_run_ids` (received,
    waiting for a pool process): all of them are seen, for the reaper and the broker check."""
    now = timezone.now()
    Run.objects.filter(id__in=[*active_run_ids, *reserved_run_ids]).update(last_seen_at=now)
    Worker.objects.update_or_create(
        hostname=hostname,
        defaults={
            "pid": pid,
            "queues": queues,
            "concurrency": concurrency,
            "started_at": started_at,
            "last_heartbeat_at": now,
            "active_run_ids": active_run_ids,
            "stopped_at": None,
        },
    )


def worker_stopped(*, hostname: str) -> None:
    Worker.objects.filter(hostname=hostname).update(stopped_at=timezone.now(), active_run_ids=[])


def runs_reap_lost(*, now: datetime, timeout: timedelta) -> int:
    """End the attempt of every run no worker has reported executing for `timeout`: its worker
    died, or its pool process did, or its outcome could not be written. Each then retries or ends
    LOST per its job's policy (or CANCELLED, when it was being cancelled)."""
    silent = (
        Run.objects.filter(state__in=EXECUTING_STATES)
        .alias(seen=Coalesce(Greatest("last_seen_at", "started_at"), "started_at"))
        .filter(seen__lt=now - timeout)
        .values_list("id", "attempt", "worker")
    )
    reaped = 0
    for run_id, attempt, worker in silent:
        reason = f"Worker lost: {worker or 'its worker'} stopped reporting this run for {timeout}."
        reaped += run_attempt_lost(
            run_id=run_id, attempt=attempt, reason=reason, detected_by=LostDetector.REAPER
        )
    if reaped:
        logger.warning("Declared %d runs lost: their workers stopped reporting them", reaped)
    return reaped


def runs_republish_missing(*, now: datetime, older_than: timedelta, timeout: timedelta) -> int:
    """Publish again the queued runs nobody holds: not waiting in the broker (their publisher died
    before sending, the broker was down, or Redis lost its data) and not reported by any worker's
    heartbeat for `timeout` (the worker that had received them died: Redis would return them only
    after its visibility timeout)."""
    waiting_to_start = sources_of(RunState.RUNNING)
    queued = dict(
        Run.objects.filter(
            # A deferred run (next_attempt_at set) is off the broker on purpose.
            state__in=waiting_to_start,
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
        still_queued = Run.objects.filter(id__in=missing, state__in=waiting_to_start)
        # Outside a transaction: published at once.
        runs_publish_on_commit(list(still_queued.select_related("job")))
    return len(missing)


def runs_purge_expired(*, now: datetime, keep: timedelta) -> int:
    """Delete finished runs (with their attempts and logs) that ended before `now - keep`, in
    batches; return how many. The scheduler runs it every hour (DTS_RUN_RETENTION_DAYS)."""
    cutoff = now - keep
    purged = 0
    while True:
        batch = list(
            Run.objects.filter(state__in=TERMINAL_STATES, finished_at__lt=cutoff).values_list(
                "id", flat=True
            )[:DELETE_BATCH]
        )
        if not batch:
            break
        Run.objects.filter(id__in=batch).delete()
        purged += len(batch)
    if purged:
        logger.info("Removed %d runs finished before %s", purged, cutoff)
    return purged
