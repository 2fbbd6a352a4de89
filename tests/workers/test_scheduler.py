"""Real `celery beat` processes with dts's scheduler, on the real PostgreSQL and Redis."""

import itertools
import json
import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import redis
from django.db.models import Count
from django.utils import timezone

from apps.jobs.services import job_update
from apps.runs.models import Run
from apps.schedules.services import schedule_create, schedule_pause, schedule_update
from dispatch.messages import SEND_CHUNK
from tests.conftest import REPO, database_url, stop_process, wait_for_log_line
from tests.factories import JobFactory, RunFactory
from tests.processes import redis_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

# Its own Redis database, so no worker of the other tests consumes what the schedulers publish.
BROKER_URL = redis_url(2)


@pytest.fixture
def broker():
    client = redis.Redis.from_url(BROKER_URL)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def start_schedulers(tmp_path):
    processes = []

    def start(count: int) -> list[subprocess.Popen]:
        env = os.environ | {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": BROKER_URL,
            "DTS_QUEUED_CHECK_AFTER_SECONDS": "2",
            "DTS_BROKER_CHECK_EVERY_SECONDS": "2",
        }
        started = []
        for _ in range(count):
            number = len(processes)  # each scheduler its own log, kept to the end of the test
            log = tmp_path / f"beat-{number}.log"
            command = [
                *(sys.executable, "-m", "celery", "-A", "workers", "beat", "--loglevel", "INFO"),
                *("--scheduler", "workers.scheduler:DatabaseScheduler"),
                *("--pidfile", str(tmp_path / f"beat-{number}.pid")),
            ]
            with log.open("w") as output:
                process = subprocess.Popen(
                    command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT
                )
            processes.append(process)
            started.append((process, log))
        for process, log in started:
            wait_for_log_line(log, "beat: Starting...", process, timeout=60)
        return [process for process, _ in started]

    yield start
    for process in processes:
        stop_process(process)


def assert_no_errors_logged(tmp_path) -> None:
    """No scheduler logged an error: a guard that only the unique key backs up (a claim without its
    lock, an insert without its conflict handling) shows here as a rolled-back tick."""
    for log in sorted(tmp_path.glob("beat-*.log")):
        errors = [
            line
            for line in log.read_text(errors="replace").splitlines()
            if any(sign in line for sign in ("Traceback", "IntegrityError", "ERROR/"))
        ]
        assert errors == [], f"{log.name} logged errors:\n" + "\n".join(errors[:20])


def published_ids(client: redis.Redis) -> list[str]:
    """The task id of every message waiting in the default queue, at any priority."""
    return [
        json.loads(message)["headers"]["id"]
        for key in client.scan_iter(match="default*", _type="list")
        for message in client.lrange(key, 0, -1)
    ]


def wait_until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not true after {timeout} s")
        time.sleep(0.05)


@pytest.mark.parametrize("replicas", [2, 3])
def test_racing_schedulers_fire_each_due_time_exactly_once(
    replicas, broker, start_schedulers, tmp_path
):
    job = JobFactory(task_type="dts.noop", args={})
    schedules = [schedule_create(job=job, kind="interval", interval_seconds=1) for _ in range(250)]

    processes = start_schedulers(replicas)
    time.sleep(10)
    for process in processes:
        stop_process(process)
    # A scheduler stopped between its commit and its publish leaves queued runs the broker never
    # received; with the job disabled, one more scheduler only publishes those.
    job_update(job=job, data={"enabled": False})
    runs = Run.objects.filter(schedule__in=schedules)
    run_ids = {str(run_id) for run_id in runs.values_list("id", flat=True)}
    start_schedulers(1)
    wait_until(lambda: set(published_ids(broker)) >= run_ids, timeout=30)

    per_fire = runs.values("schedule", "scheduled_for").annotate(n=Count("id"))
    assert runs.count() >= 2000
    assert {row["n"] for row in per_fire} == {1}
    # Every run was published, and nothing else was. A run published again while its first
    # message was on its way is still run once, by the worker's start guard
    # (tests/workers/test_execution.py).
    published = published_ids(broker)
    assert set(published) == run_ids
    assert len(published) - runs.count() <= SEND_CHUNK * replicas
    # And none was missed: each schedule fired every second from its first fire to its last.
    for schedule in schedules:
        times = list(
            runs.filter(schedule=schedule)
            .order_by("scheduled_for")
            .values_list("scheduled_for", flat=True)
        )
        assert [b - a for a, b in itertools.pairwise(times)] == [timedelta(seconds=1)] * (
            len(times) - 1
        )
    assert_no_errors_logged(tmp_path)


def test_an_edit_takes_effect_within_a_second_without_a_restart(broker, start_schedulers):
    schedule = schedule_create(
        job=JobFactory(task_type="dts.noop", args={}), kind="cron", cron_expression="@yearly"
    )
    start_schedulers(1)
    time.sleep(2)  # the scheduler is asleep: nothing is due for months

    edited_at = timezone.now()
    schedule_update(
        schedule=schedule, data={"kind": "interval", "cron_expression": "", "interval_seconds": 1}
    )
    wait_until(lambda: published_ids(broker), timeout=5)

    first = Run.objects.filter(schedule=schedule).earliest("scheduled_for")
    assert str(first.id) in published_ids(broker)
    assert first.scheduled_for - edited_at <= timedelta(seconds=1)
    assert first.queued_at - first.scheduled_for < timedelta(milliseconds=500)


def test_a_new_schedule_fires_without_a_restart(broker, start_schedulers):
    start_schedulers(1)
    time.sleep(2)

    created_at = timezone.now()
    schedule = schedule_create(
        job=JobFactory(task_type="dts.noop", args={}), kind="interval", interval_seconds=1
    )
    wait_until(lambda: published_ids(broker), timeout=5)

    first = Run.objects.filter(schedule=schedule).earliest("scheduled_for")
    assert str(first.id) in published_ids(broker)
    assert first.queued_at - created_at < timedelta(milliseconds=1500)


def test_a_pause_takes_effect_within_a_second(broker, start_schedulers, admin_user):
    schedule = schedule_create(
        job=JobFactory(task_type="dts.noop", args={}), kind="interval", interval_seconds=1
    )
    start_schedulers(1)
    wait_until(lambda: Run.objects.filter(schedule=schedule).count() >= 2, timeout=10)

    schedule_pause(schedule=schedule, note="testing", actor=admin_user)
    paused_at = timezone.now()
    time.sleep(2.5)

    assert not Run.objects.filter(
        schedule=schedule, created_at__gt=paused_at + timedelta(seconds=1)
    ).exists()


def test_a_queued_run_the_broker_never_received_is_published(broker, start_schedulers):
    # As if its publisher crashed between its commit and its send, a minute ago.
    run = RunFactory(
        job=JobFactory(task_type="dts.noop", args={}),
        queued_at=timezone.now() - timedelta(minutes=1),
    )

    start_schedulers(1)
    wait_until(lambda: published_ids(broker), timeout=15)

    run.refresh_from_db()
    assert run.state == "queued"
    assert published_ids(broker) == [str(run.id)]
