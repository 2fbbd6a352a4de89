"""apps.jobs.selectors.jobs_health on the real PostgreSQL, with the clock controlled: the scheduler
fires, a worker runs one job's fires and nobody runs the other's."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from apps.jobs.health import JobHealth
from apps.jobs.models import Job
from apps.jobs.selectors import jobs_health
from apps.runs.models import Run
from apps.runs.services.moves import run_attempt_end, run_start
from apps.runs.states import RunState
from apps.schedules.firing import schedules_fire_due
from apps.schedules.models import SkippedFire, SkipReason
from apps.schedules.services import schedule_create, schedule_pause
from tests.factories import JobFactory, RunFactory, TeamFactory

pytestmark = pytest.mark.django_db

CREATED = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
GRACE = timedelta(seconds=60)
SECOND = timedelta(seconds=1)


@pytest.fixture(autouse=True)
def _policy(settings):
    settings.DTS_JOB_HEALTH_GRACE_SECONDS = 60
    settings.DTS_JOB_FAILING_RUNS = 3
    settings.DTS_SCHEDULER_MISFIRE_GRACE_SECONDS = 60


def hourly_job(name: str) -> Job:
    job = JobFactory(team=TeamFactory(name="ops"), name=name, task_type="dts.noop", args={})
    schedule_create(job=job, kind="cron", cron_expression="0 * * * *")
    return job


def health_of(*jobs: Job) -> list[str]:
    statuses = jobs_health(jobs=Job.objects.all(), now=timezone.now())
    return [statuses[job.id].health for job in jobs]


def test_a_schedule_whose_worker_is_gone_is_late_then_missed_on_time_a_working_one_stays_ok(
    sent_tasks,
):
    with time_machine.travel(CREATED, tick=False) as clock:
        gone, steady = hourly_job("gone"), hourly_job("steady")

        def at(instant: datetime) -> list[str]:
            """The clock at `instant`: the scheduler ticks, a worker runs steady's runs (none of
            gone's: its worker is gone), then both are judged."""
            clock.move_to(instant)
            schedules_fire_due(now=timezone.now(), batch_size=100)
            for run in Run.objects.filter(job=steady, state=RunState.QUEUED):
                run_start(run_id=run.id, attempt=1, worker="worker@one", limited=False)
                run_attempt_end(run_id=run.id, attempt=1, outcome=RunState.SUCCEEDED)
            return health_of(gone, steady)

        ten = CREATED + HOUR / 2
        assert at(CREATED) == ["ok", "ok"]
        assert at(ten) == ["ok", "ok"]  # fired at 10:00, within its grace
        assert Run.objects.filter(job=gone, state=RunState.QUEUED).count() == 1
        assert at(ten + GRACE - SECOND) == ["ok", "ok"]
        assert at(ten + GRACE) == ["late", "ok"]
        assert at(ten + HOUR) == ["late", "ok"]  # 11:00 fired, within its grace
        assert at(ten + HOUR + GRACE - SECOND) == ["late", "ok"]
        assert at(ten + HOUR + GRACE) == ["missed", "ok"]
        for hours in range(2, 6):  # the scheduler ticks on: every fire is queued, none starts
            assert at(ten + hours * HOUR + GRACE) == ["missed", "ok"]
        assert Run.objects.filter(job=gone, state=RunState.QUEUED).count() == 6

        # The worker is back and drains the queue: ok again.
        for run in Run.objects.filter(job=gone, state=RunState.QUEUED):
            run_start(run_id=run.id, attempt=1, worker="worker@two", limited=False)
        assert health_of(gone, steady) == ["ok", "ok"]

        statuses = jobs_health(jobs=Job.objects.filter(id=steady.id), now=timezone.now())
        latest = Run.objects.filter(job=steady).order_by("-created_at").first()
        assert statuses[steady.id].last_success_at == latest.finished_at
        assert statuses[steady.id].next_fire_at == ten + 6 * HOUR


def test_a_fire_skipped_for_an_overlap_is_missed_at_once_and_a_paused_job_is_paused():
    with time_machine.travel(CREATED, tick=False) as clock:
        skipping, paused = hourly_job("skipping"), hourly_job("paused")
        clock.move_to(CREATED + HOUR / 2 + GRACE)
        schedule = skipping.schedules.get()
        RunFactory(job=skipping, state=RunState.SUCCEEDED, finished_at=timezone.now())
        SkippedFire.objects.create(
            schedule=schedule,
            reason=SkipReason.OVERLAP,
            first_scheduled_for=CREATED + HOUR / 2,
            last_scheduled_for=CREATED + HOUR / 2,
            count=1,
        )
        schedule_pause(schedule=paused.schedules.get(), note="maintenance")

        assert health_of(skipping, paused) == ["missed", "paused"]
        Job.objects.filter(id=paused.id).update(enabled=False)
        assert (
            jobs_health(jobs=Job.objects.all(), now=timezone.now())[paused.id].next_fire_at is None
        )


def test_failing_counts_the_latest_finished_runs_and_leaves_cancelled_and_waiting_ones_out():
    now = timezone.now()
    job = JobFactory(task_type="dts.noop", args={})
    for minutes, state in [(5, RunState.SUCCEEDED), (4, RunState.FAILED), (3, RunState.LOST)]:
        RunFactory(job=job, state=state, finished_at=now - timedelta(minutes=minutes))
    RunFactory(job=job, state=RunState.CANCELLED)
    RunFactory(job=job, state=RunState.QUEUED)
    Run.objects.filter(job=job).update(created_at=now - HOUR)  # the waiting ones stay newest
    # Created in the order they finished: a tie would leave which comes first to the database.
    Run.objects.filter(job=job, state=RunState.FAILED).update(created_at=now - HOUR * 3 / 4)
    Run.objects.filter(job=job, state=RunState.LOST).update(created_at=now - HOUR / 2)

    assert health_of(job) == ["ok"]  # the success is among the latest 3 finished
    RunFactory(job=job, state=RunState.TIMED_OUT, finished_at=now)
    assert health_of(job) == ["failing"]


def test_the_number_of_queries_does_not_grow_with_the_jobs(django_assert_max_num_queries):
    now = timezone.now()
    for index in range(30):
        job = JobFactory(task_type="dts.noop", args={})
        schedule_create(job=job, kind="interval", interval_seconds=60 * (1 + index))
        RunFactory(job=job, state=RunState.SUCCEEDED, finished_at=now)
    # None of the schedules' due times has a run: the third query, of skipped fires, is made.
    with django_assert_max_num_queries(3):
        statuses = jobs_health(jobs=Job.objects.all(), now=now + timedelta(hours=2))

    assert len(statuses) == 30
    assert {status.health for status in statuses.values()} == {JobHealth.MISSED}


def test_the_portable_reading_of_the_latest_outcomes_agrees_with_postgresqls(monkeypatch):
    now = timezone.now()
    jobs = [JobFactory(task_type="dts.noop", args={}) for _ in range(4)]
    for index, job in enumerate(jobs):
        for offset in range(index):
            RunFactory(job=job, state=RunState.FAILED, finished_at=now - timedelta(seconds=offset))
    postgresql = jobs_health(jobs=Job.objects.all(), now=now)
    monkeypatch.setattr(connection, "vendor", "sqlite")

    portable = jobs_health(jobs=Job.objects.all(), now=now)

    assert portable == postgresql
    assert [postgresql[job.id].health for job in jobs] == ["ok", "failing", "failing", "failing"]
