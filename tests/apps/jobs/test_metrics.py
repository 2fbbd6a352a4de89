"""apps.jobs.metrics: the job health series of every job, as Prometheus reads them."""

import logging
from datetime import timedelta

import pytest
from django.db import DatabaseError
from django.utils import timezone

from apps.jobs.metrics import JobHealthExposition
from apps.runs.states import RunState
from apps.schedules.models import Schedule
from tests.factories import JobFactory, RunFactory, ScheduleFactory, TeamFactory
from tests.metrics import promtool_check, samples_of, value

pytestmark = pytest.mark.django_db

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


def measured() -> bytes:
    exposition = JobHealthExposition()
    exposition.refresh()
    return exposition.text()


def test_every_job_has_one_health_set_and_the_others_zero(jobs):
    samples = samples_of(measured().decode())

    def health(team, job):
        values = {
            health: samples.get(
                ("dts_job_health", frozenset({"team": team, "job": job, "health": health}.items()))
            )
            for health in HEALTHS
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
    assert value(samples, "dts_job_last_success_timestamp_seconds", **fine) == pytest.approx(
        succeeded.timestamp()
    )
    # none succeeded, or no schedule: no series rather than a made-up time
    failing = {"team": "red", "job": "failing"}
    assert ("dts_job_last_success_timestamp_seconds", frozenset(failing.items())) not in samples
    assert ("dts_job_next_fire_timestamp_seconds", frozenset(fine.items())) not in samples
    assert value(
        samples, "dts_job_next_fire_timestamp_seconds", team="red", job="silent"
    ) == pytest.approx((jobs["now"] + timedelta(seconds=30)).timestamp())


def test_the_output_passes_promtool_check_metrics(jobs):
    text = measured()
    promtool_check(text.decode())
    assert b'dts_job_health{health="missed",job="silent",team="red"} 1.0' in text


def test_the_text_is_measured_by_refresh_only_never_by_reading_it(jobs, django_assert_num_queries):
    with django_assert_num_queries(0):
        exposition = JobHealthExposition()
        empty = exposition.text()
    assert b"# TYPE dts_job_health gauge" in empty
    assert b"dts_job_health{" not in empty
    exposition.refresh()
    first = exposition.text()
    JobFactory(team=jobs["fine"].team, name="newcomer")
    with django_assert_num_queries(0):
        assert exposition.text() == first
    exposition.refresh()
    assert b'job="newcomer"' in exposition.text()


def test_a_database_error_leaves_the_series_out_and_the_scrape_answers(jobs, monkeypatch, caplog):
    def fails(**_):
        raise DatabaseError("relation does not exist")

    monkeypatch.setattr("apps.jobs.metrics.job_health_families", fails)

    with caplog.at_level(logging.ERROR, logger="apps.jobs.metrics"):
        text = measured()

    assert b"# TYPE dts_job_health gauge" in text
    assert b"dts_job_health{" not in text
    assert "Job health not measured" in caplog.text
