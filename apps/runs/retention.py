"""Removing what is past its keeping: finished runs (with their attempts and logs) and skipped-fire
records older than DTS_RUN_RETENTION_DAYS. The scheduler runs it every hour."""

import logging
from datetime import datetime, timedelta

from apps.runs.models import Run
from apps.runs.states import TERMINAL_STATES
from apps.schedules.models import SkippedFire

logger = logging.getLogger(__name__)

DELETE_BATCH = 1000


def runs_purge_expired(*, now: datetime, keep: timedelta) -> int:
    """Delete finished runs that ended before `now - keep`, in batches; return how many."""
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
    SkippedFire.objects.filter(created_at__lt=cutoff).delete()
    if purged:
        logger.info("Removed %d runs finished before %s", purged, cutoff)
    return purged
