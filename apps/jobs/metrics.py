"""Job health in Prometheus: `dts_job_health`, `dts_job_last_success_timestamp_seconds` and
`dts_job_next_fire_timestamp_seconds` for every job (docs/metrics.md), read from the database at
scrape time by a custom collector.

The scheduler process registers it (`job_health_collector_register`) on the registry its metrics
port serves. The answer is kept `cache_seconds`, so that several Prometheus servers, or a scrape
repeated at once, cost one computation; a scrape while PostgreSQL is away has none of these series
(an outage is in `dts_dependency_up`, never a stale health)."""

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime

from django.db import DatabaseError, connection
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from apps.core.outages import database_outage, database_unreachable
from apps.jobs.health import JobHealth
from apps.jobs.models import Job
from apps.jobs.selectors import jobs_health

logger = logging.getLogger(__name__)

DEFAULT_CACHE_SECONDS = 5.0


class JobHealthCollector(Collector):
    def __init__(
        self,
        *,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = timezone.now,
    ) -> None:
        self.cache_seconds = cache_seconds
        self.clock = clock
        self.now = now
        self._families: list[Metric] = []
        self._expires_at: float | None = None
        self._lock = threading.Lock()  # the metrics server answers each scrape in a thread

    def describe(self) -> Iterable[Metric]:
        # Registering asks this, not collect(): no database query at registration.
        return list(_families())

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            if self._expires_at is None or self.clock() >= self._expires_at:
                self._families = self._read()
                self._expires_at = self.clock() + self.cache_seconds
            return list(self._families)

    def _read(self) -> list[Metric]:
        try:
            families = job_health_families(now=self.now())
        except DatabaseError as error:
            if database_unreachable(error):
                database_outage().failed(error)
            else:
                logger.exception("Job health not measured")
            return list(_families())
        finally:
            # The metrics server answers each scrape in a new thread: a connection opened here
            # would otherwise outlive it.
            if not connection.in_atomic_block:
                connection.close()
        database_outage().succeeded()
        return families


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


def job_health_collector_register(
    registry: CollectorRegistry = REGISTRY, *, cache_seconds: float = DEFAULT_CACHE_SECONDS
) -> JobHealthCollector:
    """Add the job health series to `registry` (the process's default one unless told)."""
    collector = JobHealthCollector(cache_seconds=cache_seconds)
    registry.register(collector)
    return collector


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
