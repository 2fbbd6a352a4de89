"""The reads behind the live pages' pictures: runs per minute by outcome, and each job's latest
runs."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from apps.accounts.models import Role
from apps.runs.selectors import OUTCOMES, runs_latest_per_job, runs_per_minute
from apps.runs.states import RunState
from tests.factories import JobFactory, MembershipFactory, RunFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 1, 12, 30, 40, tzinfo=UTC)


@pytest.fixture
def red():
    team = TeamFactory(name="red")
    user = MembershipFactory(team=team, user=UserFactory(), role=Role.VIEWER).user
    return user, JobFactory(team=team, task_type="dts.noop", args={})


def ended(job, state: str, finished_at: datetime):
    return RunFactory(job=job, state=state, finished_at=finished_at)


def test_runs_are_counted_in_the_minute_they_ended_by_outcome(red, django_assert_num_queries):
    user, job = red
    ended(job, RunState.SUCCEEDED, NOW)  # the current minute, so far
    ended(job, RunState.SUCCEEDED, NOW.replace(second=0))
    ended(job, RunState.FAILED, NOW - timedelta(minutes=5))
    ended(job, RunState.LOST, NOW - timedelta(minutes=59, seconds=40))  # 11:31:00, the first
    ended(job, RunState.FAILED, NOW - timedelta(minutes=60, seconds=41))  # 11:29:59: before it
    RunFactory(job=job, state=RunState.RUNNING)

    with django_assert_num_queries(1):
        chart = runs_per_minute(user=user, now=NOW)

    assert chart.start == datetime(2026, 3, 1, 11, 31, tzinfo=UTC)
    assert chart.minutes == 60
    assert list(chart.counts) == OUTCOMES
    assert chart.counts["succeeded"][59] == 2
    assert chart.counts["failed"][54] == 1
    assert chart.counts["lost"][0] == 1
    assert sum(sum(counts) for counts in chart.counts.values()) == 4


def test_runs_per_minute_are_the_users_teams_and_the_jobs_asked(red):
    user, job = red
    other_job = JobFactory(team=job.team, task_type="dts.noop", args={})
    ended(job, RunState.SUCCEEDED, NOW)
    ended(other_job, RunState.SUCCEEDED, NOW)
    ended(JobFactory(team=TeamFactory(name="blue")), RunState.SUCCEEDED, NOW)

    assert runs_per_minute(user=user, now=NOW).counts["succeeded"][-1] == 2
    assert runs_per_minute(user=user, now=NOW, job_id=job.id).counts["succeeded"][-1] == 1
    assert runs_per_minute(user=user, now=NOW, minutes=5).counts["succeeded"] == [0, 0, 0, 0, 2]


@pytest.mark.parametrize("minutes", [0, 61])
def test_runs_per_minute_are_bounded(red, minutes):
    with pytest.raises(ValueError, match="minutes"):
        runs_per_minute(user=red[0], now=NOW, minutes=minutes)


@pytest.mark.parametrize("vendor", ["postgresql", "sqlite"])
def test_each_jobs_latest_runs_are_read_in_one_query_newest_first(
    red, vendor, monkeypatch, django_assert_num_queries
):
    _, busy = red
    quiet, idle = JobFactory(), JobFactory()
    busy_runs = [RunFactory(job=busy) for _ in range(25)]
    quiet_runs = [RunFactory(job=quiet, state=RunState.SUCCEEDED) for _ in range(2)]
    monkeypatch.setattr(connection, "vendor", vendor)  # the window function runs on PostgreSQL too

    with django_assert_num_queries(1):
        latest = runs_latest_per_job(job_ids=[busy.id, quiet.id, idle.id], count=20)

    assert set(latest) == {busy.id, quiet.id}
    assert [run["id"] for run in latest[busy.id]] == [run.id for run in busy_runs[::-1][:20]]
    assert [run["id"] for run in latest[quiet.id]] == [run.id for run in quiet_runs[::-1]]
    assert latest[quiet.id][0] == {
        "id": quiet_runs[1].id,
        "state": "succeeded",
        "created_at": quiet_runs[1].created_at,
    }


@pytest.mark.parametrize("count", [0, 21])
def test_each_jobs_latest_runs_are_bounded(red, count):
    with pytest.raises(ValueError, match="count"):
        runs_latest_per_job(job_ids=[red[1].id], count=count)


def test_no_job_asks_no_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert runs_latest_per_job(job_ids=[], count=20) == {}
