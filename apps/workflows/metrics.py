"""Workflow runs in Prometheus: started (by trigger) and ended (by state, with how long they took)
where that happens, after the commit; those under way, measured by the scheduler every few
seconds."""

from datetime import timedelta

from django.conf import settings
from prometheus_client import Counter, Gauge, Histogram

# A workflow of no-op steps ends in under a second; nightly pipelines take hours.
DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400)

STARTED = Counter("dts_workflow_runs_started", "Workflow runs started, by trigger", ["trigger"])
FINISHED = Counter("dts_workflow_runs_finished", "Workflow runs ended, by state", ["state"])
DURATION = Histogram(
    "dts_workflow_run_duration_seconds",
    "A workflow run's start to its end (a retried one: its first start to its last end)",
    ["state"],
    buckets=DURATION_BUCKETS,
)
RUNNING = Gauge(
    "dts_workflow_runs_running",
    "Workflow runs under way, measured every few seconds",
    multiprocess_mode="livemostrecent",
)


def workflow_run_started_record(trigger: str) -> None:
    if settings.DTS_METRICS_ENABLED:
        STARTED.labels(trigger).inc()


def workflow_run_finished_record(state: str, took: timedelta) -> None:
    if settings.DTS_METRICS_ENABLED:
        FINISHED.labels(state).inc()
        DURATION.labels(state).observe(max(0.0, took.total_seconds()))


def workflow_runs_running_record(count: int) -> None:
    if settings.DTS_METRICS_ENABLED:
        RUNNING.set(count)
