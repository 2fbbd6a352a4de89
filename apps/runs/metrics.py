"""The runs' Prometheus series (docs/metrics.md): what workers start and end, how long runs wait
and take, and what the broker holds. The run services record them as they write (a worker's
start and the end of its attempts, the reaper's lost runs); the scheduler sets the broker's.

In a prefork worker every pool process counts into files of prometheus_client's multiprocess
mode (workers.multiprocess), which the worker's main process serves summed: `dts_runs_active`
sums the live processes only (`livesum`), so a killed process's runs leave it.

`DTS_METRICS_ENABLED` off records none of the runs' series: the cost of metrics on the hot path
can then be measured (bench/metrics.py)."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from django.conf import settings
from prometheus_client import Counter, Gauge, Histogram

# From a no-op's milliseconds to a nightly job's hours.
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 21600)
# Milliseconds when workers keep up; minutes to hours when a queue is backed up.
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 900, 3600)

RUNS_STARTED = Counter(
    "dts_runs_started", "Attempts started (their start recorded)", ["queue", "task_type"]
)
RUNS_FINISHED = Counter(
    "dts_runs_finished",
    "Attempts ended, by outcome (an attempt that ends in a retry counts its own outcome)",
    ["queue", "task_type", "outcome"],
)
RUN_DURATION = Histogram(
    "dts_run_duration_seconds",
    "Start to end of an attempt",
    ["queue", "task_type"],
    buckets=DURATION_BUCKETS,
)
RUN_QUEUE_WAIT = Histogram(
    "dts_run_queue_wait_seconds",
    "Queued (or due again, for a retry or a deferred start) to started",
    ["queue"],
    buckets=WAIT_BUCKETS,
)
RUNS_ACTIVE = Gauge(
    "dts_runs_active", "Attempts executing now", ["queue"], multiprocess_mode="livesum"
)
RUN_RETRIES = Counter(
    "dts_run_retries", "Attempts that ended in a retry being scheduled", ["queue", "task_type"]
)
RUN_DEFERRALS = Counter(
    "dts_run_rate_limit_deferrals",
    "Starts put off by a job's cap on concurrent runs or a rate limit",
    ["queue"],
)
RUNS_LOST = Counter(
    "dts_runs_lost",
    "Attempts declared lost: their pool process died (worker), or their worker stopped "
    "reporting them (reaper)",
    ["queue", "detected_by"],
)
BROKER_QUEUE_MESSAGES = Gauge(
    "dts_broker_queue_messages",
    "Messages waiting in the broker, every priority list of the queue summed",
    ["queue"],
    multiprocess_mode="livemostrecent",
)
BROKER_QUEUE_OLDEST_AGE = Gauge(
    "dts_broker_queue_oldest_message_age_seconds",
    "Age of the oldest queued run of the queue (0 when none is queued)",
    ["queue"],
    multiprocess_mode="livemostrecent",
)


class LostDetector(StrEnum):
    """Who found a run's worker gone."""

    WORKER = "worker"  # its worker's main process saw the pool process die
    REAPER = "reaper"  # the scheduler: no heartbeat listed it for DTS_WORKER_HEARTBEAT_TIMEOUT


class _RunSeries:
    """The series of one queue and task type. Each run moves several: looking them up once per
    process, not at each call (prometheus_client's `labels`), is a good part of what metrics cost
    the hot path (bench/metrics.py)."""

    __slots__ = ("duration", "finished", "retries", "started", "task_type", "wait")

    def __init__(self, queue: str, task_type: str) -> None:
        self.task_type = task_type
        self.started = RUNS_STARTED.labels(queue, task_type)
        self.wait = RUN_QUEUE_WAIT.labels(queue)
        self.duration = RUN_DURATION.labels(queue, task_type)
        self.retries = RUN_RETRIES.labels(queue, task_type)
        self.finished: dict[str, Any] = {}

    def finished_as(self, queue: str, outcome: str) -> Any:
        child = self.finished.get(outcome)
        if child is None:
            child = self.finished[outcome] = RUNS_FINISHED.labels(queue, self.task_type, outcome)
        return child


# Bounded: queues (DTS_QUEUES) times registered task types.
_series: dict[tuple[str, str], _RunSeries] = {}
_active: dict[str, Any] = {}


def _series_of(queue: str, task_type: str) -> _RunSeries:
    series = _series.get((queue, task_type))
    if series is None:
        series = _series[(queue, task_type)] = _RunSeries(queue, task_type)
    return series


def run_started_record(
    *, queue: str, task_type: str, queued_at: datetime | None, started_at: datetime
) -> None:
    if not settings.DTS_METRICS_ENABLED:
        return
    series = _series_of(queue, task_type)
    series.started.inc()
    if queued_at is not None:
        series.wait.observe(max(0.0, (started_at - queued_at).total_seconds()))


def run_ended_record(
    *,
    queue: str,
    task_type: str,
    outcome: str,
    started_at: datetime | None,
    ended_at: datetime,
    retried: bool = False,
) -> None:
    if not settings.DTS_METRICS_ENABLED:
        return
    series = _series_of(queue, task_type)
    series.finished_as(queue, outcome).inc()
    if started_at is not None:
        series.duration.observe(max(0.0, (ended_at - started_at).total_seconds()))
    if retried:
        series.retries.inc()


def run_deferred_record(*, queue: str) -> None:
    if settings.DTS_METRICS_ENABLED:
        RUN_DEFERRALS.labels(queue).inc()


def run_lost_record(*, queue: str, detected_by: LostDetector) -> None:
    if settings.DTS_METRICS_ENABLED:
        RUNS_LOST.labels(queue, detected_by.value).inc()


class ActiveRun:
    """Count the attempt in `dts_runs_active` while the block executes it: in the process that
    executes it, so that a process that dies takes its count with it. (A class: cheaper than a
    generator-based context manager on the hot path.)"""

    __slots__ = ("active",)

    def __init__(self, *, queue: str) -> None:
        self.active = None
        if settings.DTS_METRICS_ENABLED:
            self.active = _active.get(queue)
            if self.active is None:
                self.active = _active[queue] = RUNS_ACTIVE.labels(queue)

    def __enter__(self) -> None:
        if self.active is not None:
            self.active.inc()

    def __exit__(self, *exc_info: object) -> None:
        if self.active is not None:
            self.active.dec()


def broker_queues_record(*, depths: dict[str, int], oldest_ages: dict[str, float]) -> None:
    """Set the broker's gauges: every queue of `depths`, its oldest queued run's age or 0."""
    for queue, depth in depths.items():
        BROKER_QUEUE_MESSAGES.labels(queue).set(depth)
        BROKER_QUEUE_OLDEST_AGE.labels(queue).set(oldest_ages.get(queue, 0.0))
