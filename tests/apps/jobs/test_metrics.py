"""apps.jobs.metrics: the job health series of every job, as Prometheus reads them."""

import logging
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import DatabaseError
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest

from apps.jobs.metrics import JobHealthCollector, job_health_collector_register
from apps.runs.states import RunState
from apps.schedules.models import Schedule
from tests.factories import JobFactory, RunFactory, ScheduleFactory, TeamFactory

pytestmark = pytest.mark.django_db

PROMTOOL = Path("/usr/bin/promtool")
HEALTHS = ["ok", "late", "missed", "failing", "paused"]


@pytest.fixture
def jobs():
    """In team "red": a job that succeeded, one that keeps failing, one that is disabled, and one
    whose every-minute schedule has had no run for an hour; in team "blue" one with a quote in its
    name."""
    now = timezone.now()
    red, blue = TeamFactory(name="red"), TeamFactory(name="blue")
    fine = JobFactory(team=red, name="fine")
    RunFactory(job=fine, state=RunState.SUCCEEDED, finished_at=now - timedelta(minutes=1))
    failing = JobFactory(team=red, name="failing")
    for _ in range(3):
        RunFactory(job=failing, state=RunState.FAILED, finished_at=now)
    JobFactory(team=red, name="off", enabled=False)
    silent = JobFactory(team=red, name="silent")
    schedule = ScheduleFactory(job=silent, interval_seconds=60)
    Schedule.objects.filter(id=schedule.id).update(
        updated_at=now - timedelta(hours=1), next_fire_at=now + timedelta(seconds=30)
    )
    JobFactory(team=blue, name='say "hi"\\now')
    return {"fine": fine, "now": now}


def registry_with(collector: JobHealthCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def test_every_job_has_one_health_set_and_the_others_zero(jobs):
    registry = registry_with(JobHealthCollector())

    def health(team, job):
        values = {
            value: registry.get_sample_value(
                "dts_job_health", {"team": team, "job": job, "health": value}
            )
            for value in HEALTHS
        }
        (current,) = [value for value, sample in values.items() if sample == 1.0]
        assert sorted(values.values()) == [0.0, 0.0, 0.0, 0.0, 1.0]
        return current

    assert health("red", "fine") == "ok"
    assert health("red", "failing") == "failing"
    assert health("red", "off") == "paused"
    assert health("red", "silent") == "missed"
    assert health("blue", 'say "hi"\\now') == "ok"
    fine = {"team": "red", "job": "fine"}
    succeeded = jobs["fine"].runs.get().finished_at
    assert registry.get_sample_value(
        "dts_job_last_success_timestamp_seconds", fine
    ) == pytest.approx(succeeded.timestamp())
    # none succeeded, or no schedule: no series rather than a made-up time
    assert (
        registry.get_sample_value(
            "dts_job_last_success_timestamp_seconds", {"team": "red", "job": "failing"}
        )
        is None
    )
    assert registry.get_sample_value("dts_job_next_fire_timestamp_seconds", fine) is None
    assert registry.get_sample_value(
        "dts_job_next_fire_timestamp_seconds", {"team": "red", "job": "silent"}
    ) == pytest.approx((jobs["now"] + timedelta(seconds=30)).timestamp())


def test_the_output_passes_promtool_check_metrics(jobs, tmp_path):
    assert PROMTOOL.exists(), "promtool is installed by `make services`"
    registry = registry_with(JobHealthCollector())

    text = generate_latest(registry)
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, timeout=30
    )

    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    assert (result.stdout + result.stderr).strip() == b""
    assert b'dts_job_health{health="missed",job="silent",team="red"} 1.0' in text


def test_registering_reads_nothing_and_a_scrape_within_the_cache_reads_nothing_again(
    jobs, django_assert_num_queries
):
    now = [100.0]
    with django_assert_num_queries(0):
        registry = CollectorRegistry()
        collector = job_health_collector_register(registry, cache_seconds=5)
    collector.clock = lambda: now[0]

    first = generate_latest(registry)
    JobFactory(team=jobs["fine"].team, name="newcomer")
    now[0] += 4.9
    with django_assert_num_queries(0):
        assert generate_latest(registry) == first
    now[0] += 0.1
    assert b'job="newcomer"' in generate_latest(registry)


def test_a_database_error_leaves_the_series_out_and_the_scrape_answers(jobs, monkeypatch, caplog):
    def fails(**_):
        raise DatabaseError("relation does not exist")

    monkeypatch.setattr("apps.jobs.metrics.job_health_families", fails)
    registry = registry_with(JobHealthCollector())

    with caplog.at_level(logging.ERROR, logger="apps.jobs.metrics"):
        text = generate_latest(registry)

    assert b"# TYPE dts_job_health gauge" in text
    assert b"dts_job_health{" not in text
    assert "Job health not measured" in caplog.text
