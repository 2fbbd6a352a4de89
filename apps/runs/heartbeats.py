"""Worker heartbeats: each worker node says every few seconds that it lives and what it runs."""

from datetime import datetime

from django.utils import timezone

from apps.runs.models import Run, Worker


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
