"""Job health in Prometheus: `dts_job_health`, `dts_job_last_success_timestamp_seconds` and
`dts_job_next_fire_timestamp_seconds` for every job (docs/metrics.md), read from the database.

The scheduler process measures them from its gauges thread every JOB_HEALTH_EVERY_SECONDS
(`JobHealthExposition.refresh`) and its metrics port appends the text rendered then to each
scrape (apps.core.metrics): with 10,000 jobs, deciding and rendering take a few hundred
milliseconds, which no scrape waits for. While PostgreSQL is away the text holds the families
without samples (an outage is in `dts_dependency_up`, never a stale health)."""

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from django.db import DatabaseError, connection
from django.utils import timezone
from prometheus_client import generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from apps.core.outages import database_outage, database_unreachable
from apps.jobs.health import JobHealth
from apps.jobs.models import Job
from apps.jobs.selectors import jobs_health

logger = logging.getLogger(__name__)

JOB_HEALTH_EVERY_SECONDS = 15.0


class JobHealthExposition:
    """The job health series as exposition text, measured by `refresh()`, served by `text()`."""

    def __init__(self, *, now: Callable[[], datetime] = timezone.now) -> None:
        self.now = now
        self._text = _render(_families())  # replaced whole: a scrape reads one or the other

    def text(self) -> bytes:
        return self._text

    def refresh(self) -> None:
        try:
            families: Sequence[Metric] = job_health_families(now=self.now())
        except DatabaseError as error:
            if database_unreachable(error):
                database_outage().failed(error)
            else:
                logger.exception("Job health not measured")
            families = _families()
        else:
            database_outage().succeeded()
        finally:
            # Run from a thread of the scheduler's: its connection would otherwise outlive it.
            if not connection.in_atomic_block:
                connection.close()
        self._text = _render(families)


class _Fixed(Collector):
    def __init__(self, families: Sequence[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def _render(families: Sequence[Metric]) -> bytes:
    return generate_latest(_Fixed(families))


def job_health_families(*, now: datetime) -> list[Metric]:
    """The three job health series of every job at `now`."""
    statuses = jobs_health(jobs=Job.objects.all(), now=now)
    families = _families()
    health, last_success, next_fire = families
    names = Job.objects.order_by("team__name", "name").values_list("id", "team__name", "name")
    for job_id, team, name in names:
        status = statuses.get(job_id)
        if status is None:  # created between the two reads
            continue
        for value in JobHealth:
            health.add_metric([team, name, value.value], 1.0 if status.health == value else 0.0)
        if status.last_success_at is not None:
            last_success.add_metric([team, name], status.last_success_at.timestamp())
        if status.next_fire_at is not None:
            next_fire.add_metric([team, name], status.next_fire_at.timestamp())
    return list(families)


def _families() -> list[GaugeMetricFamily]:
    return [
        GaugeMetricFamily(
            "dts_job_health",
            "1 for the job's current health (ok, late, missed, failing, paused), 0 for the others",
            labels=["team", "job", "health"],
        ),
        GaugeMetricFamily(
            "dts_job_last_success_timestamp_seconds",
            "When the job's latest succeeded run ended",
            labels=["team", "job"],
        ),
        GaugeMetricFamily(
            "dts_job_next_fire_timestamp_seconds",
            "When the job's active schedules fire next",
            labels=["team", "job"],
        ),
    ]
