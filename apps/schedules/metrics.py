"""The scheduler's Prometheus series (docs/metrics.md): what it fires and skips, how late, how long
its ticks take, and what is left due. apps.schedules.firing records the fires once committed (and
their lateness once published); the scheduler process (workers.scheduler) times its ticks and
measures the backlog every few seconds. Each replica serves its own.

`DTS_METRICS_ENABLED` off records none of them (as the runs' series, apps.runs.metrics)."""

from collections import Counter as Tally
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from prometheus_client import Counter, Gauge, Histogram

# A fire is published within milliseconds of its due time when the scheduler keeps up; seconds
# when it is busy; minutes when it was down and catches up within the misfire grace.
LATENESS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
TICK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

FIRES = Counter("dts_scheduler_fires", "Runs fired by schedules", ["queue"])
FIRE_LATENESS = Histogram(
    "dts_scheduler_fire_lateness_seconds",
    "A fire's due time (with its jitter) to its run published",
    buckets=LATENESS_BUCKETS,
)
SKIPPED_FIRES = Counter(
    "dts_scheduler_skipped_fires", "Due times that fired nothing, by reason", ["reason"]
)
TICK_DURATION = Histogram(
    "dts_scheduler_tick_duration_seconds",
    "One tick: claim the due schedules, fire them, publish their runs and the due retries",
    buckets=TICK_BUCKETS,
)
DUE_SCHEDULES = Gauge(
    "dts_scheduler_due_schedules",
    "Schedules due and not fired yet (the backlog), measured every few seconds",
    multiprocess_mode="livemostrecent",
)
LAST_TICK = Gauge(
    "dts_scheduler_last_tick_timestamp_seconds",
    "When this scheduler last ticked through (a failed tick does not count)",
    multiprocess_mode="livemostrecent",
)


def fires_record(*, queues: Iterable[str], skipped: dict[str, int]) -> None:
    """Count the committed fires (the queue of each run fired) and skipped due times (by
    reason)."""
    if not settings.DTS_METRICS_ENABLED:
        return
    for queue, count in Tally(queues).items():
        FIRES.labels(queue).inc(count)
    for reason, count in skipped.items():
        SKIPPED_FIRES.labels(reason).inc(count)


def fires_published_record(*, due_times: list[datetime]) -> None:
    """The fires due at `due_times` are published now."""
    if not settings.DTS_METRICS_ENABLED:
        return
    now = timezone.now()
    for due in due_times:
        FIRE_LATENESS.observe(max(0.0, (now - due).total_seconds()))


def tick_record(*, seconds: float, at: float) -> None:
    """A tick took `seconds` and ended at `at` (a Unix time)."""
    if not settings.DTS_METRICS_ENABLED:
        return
    TICK_DURATION.observe(seconds)
    LAST_TICK.set(at)


def due_schedules_record(count: int) -> None:
    if settings.DTS_METRICS_ENABLED:
        DUE_SCHEDULES.set(count)
