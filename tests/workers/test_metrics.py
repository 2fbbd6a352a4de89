"""The metrics of real worker and scheduler processes: a prefork worker's pool processes count in
prometheus_client's multiprocess mode and its main process serves their sum, which loses nothing
when a pool process is killed; every exposition passes `promtool check metrics`."""

import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
from django.utils import timezone

from apps.jobs.services import job_create
from apps.runs.models import Run, RunAttempt
from apps.runs.services.build import run_trigger
from apps.runs.states import RunState
from apps.schedules.services import schedule_create
from dispatch.celery import app
from tests.conftest import start_celery, wait_for_run
from tests.factories import TeamFactory
from tests.metrics import Samples, promtool_check, samples_of, scrape, total, value
from tests.processes import free_port, stop_process

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

QUEUE = "faults"  # consumed by no session-wide test worker: every run here is this worker's
COUNTED = ("_total", "_count", "_sum", "_bucket")


def queue_purge() -> None:
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(QUEUE)  # every priority list


@pytest.fixture
def worker(tmp_path) -> Iterator[tuple[subprocess.Popen, str, Path]]:
    """A prefork worker of 2 pool processes on QUEUE, serving its metrics; yields the process,
    its /metrics URL and its log."""
    queue_purge()
    port = free_port()
    log = tmp_path / "worker.log"
    process = start_celery(
        "worker",
        *("--queues", QUEUE, "--concurrency", "2", "--pool", "prefork"),
        *("--without-mingle", "--without-gossip", "--hostname", "metrics-worker@%h"),
        log=log,
        env={"DTS_WORKER_METRICS_PORT": str(port)},
    )
    try:
        yield process, f"http://127.0.0.1:{port}/metrics", log
    finally:
        stop_process(process)
        queue_purge()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.2)


def runs_done(job, count: int) -> list[Run]:
    runs = [run_trigger(job=job) for _ in range(count)]
    return [wait_for_run(run.id) for run in runs]


def scrape_when(url: str, condition: Callable[[Samples], bool], what: str) -> tuple[str, Samples]:
    """The worker's metrics once `condition` holds (a run's end is counted just after it is
    written)."""
    found: list[tuple[str, Samples]] = []

    def scraped() -> bool:
        text = scrape(url)
        found[:] = [(text, samples_of(text))]
        return condition(found[0][1])

    wait_for(scraped, what)
    return found[0]


def noops_succeeded(samples: Samples) -> float:
    return value(
        samples, "dts_runs_finished_total", queue=QUEUE, task_type="dts.noop", outcome="succeeded"
    )


def test_killed_pool_processes_lose_no_count_and_the_counts_match_the_database(worker):
    process, url, log = worker
    team = TeamFactory()
    noop = job_create(team=team, name="noop", task_type="dts.noop", queue=QUEUE)
    sleep = job_create(
        team=team, name="sleep", task_type="dts.sleep", args={"seconds": 60}, queue=QUEUE
    )
    runs_done(noop, 6)
    _, before = scrape_when(
        url,
        lambda s: noops_succeeded(s) == 6,
        "the first runs counted",
    )
    pool = psutil.Process(process.pid).children()
    assert len(pool) == 2

    sleeping = [run_trigger(job=sleep) for _ in range(2)]
    wait_for(
        lambda: Run.objects.filter(id__in=[r.id for r in sleeping], state="running").count() == 2,
        "both pool processes executing a run",
    )
    for child in pool:  # each executes one of the sleeping runs
        child.send_signal(signal.SIGKILL)
    assert {wait_for_run(run.id).state for run in sleeping} == {RunState.LOST}
    runs_done(noop, 6)

    text, after = scrape_when(
        url,
        lambda s: noops_succeeded(s) == 12,
        "the later runs counted",
    )
    promtool_check(text)
    went_back = {
        key: (was, after.get(key, 0.0))
        for key, was in before.items()
        if key[0].endswith(COUNTED) and after.get(key, 0.0) < was
    }
    assert went_back == {}
    # Against what the database recorded: every attempt started, and how each ended.
    attempts = Counter(
        RunAttempt.objects.filter(run__job__in=[noop, sleep]).values_list(
            "run__task_type", "outcome"
        )
    )
    assert attempts == {("dts.noop", "succeeded"): 12, ("dts.sleep", "lost"): 2}
    for (task_type, outcome), count in attempts.items():
        assert (
            value(
                after, "dts_runs_finished_total", queue=QUEUE, task_type=task_type, outcome=outcome
            )
            == count
        )
        assert value(after, "dts_runs_started_total", queue=QUEUE, task_type=task_type) == count
        assert (
            value(after, "dts_run_duration_seconds_count", queue=QUEUE, task_type=task_type)
            == count
        )
    assert total(after, "dts_runs_finished_total") == 14
    assert value(after, "dts_run_queue_wait_seconds_count", queue=QUEUE) == 14
    assert value(after, "dts_runs_lost_total", queue=QUEUE, detected_by="worker") == 2
    assert total(after, "dts_run_retries_total") == 0
    # The killed processes' runs left the gauge with them (marked dead when scraped).
    assert value(after, "dts_runs_active", queue=QUEUE) == 0
    assert len(psutil.Process(process.pid).children()) == 2  # replaced

    # Its own folder, made at start, goes when it stops.
    folder = re.search(r"summed from (\S+)", log.read_text())
    assert folder is not None
    assert Path(folder[1]).is_dir()
    stop_process(process)
    assert not Path(folder[1]).exists()


def test_a_running_run_is_active_until_it_ends(worker):
    _, url, _ = worker
    job = job_create(
        team=TeamFactory(), name="sleep", task_type="dts.sleep", args={"seconds": 3}, queue=QUEUE
    )
    run = run_trigger(job=job)
    scrape_when(url, lambda s: value(s, "dts_runs_active", queue=QUEUE) == 1, "one active run")
    wait_for_run(run.id)
    scrape_when(url, lambda s: value(s, "dts_runs_active", queue=QUEUE) == 0, "none active")


def test_the_scheduler_serves_its_fires_ticks_and_the_broker_queues(tmp_path):
    queue_purge()
    job = job_create(team=TeamFactory(), name="nightly", task_type="dts.noop", queue=QUEUE)
    schedule_create(job=job, kind="once", once_at=timezone.now() + timedelta(seconds=1))
    port = free_port()
    scheduler = start_celery(
        "beat",
        *("--scheduler", "workers.scheduler:DatabaseScheduler"),
        *("--pidfile", str(tmp_path / "beat.pid")),
        log=tmp_path / "beat.log",
        env={"DTS_SCHEDULER_METRICS_PORT": str(port)},
    )
    try:
        text, samples = scrape_when(
            f"http://127.0.0.1:{port}/metrics",
            lambda s: (
                value(s, "dts_scheduler_fires_total", queue=QUEUE) == 1
                and value(s, "dts_broker_queue_messages", queue=QUEUE) == 1  # no worker here
            ),
            "the fire counted and its message seen in the broker",
        )
    finally:
        stop_process(scheduler)
        queue_purge()

    promtool_check(text)
    assert value(samples, "dts_scheduler_fire_lateness_seconds_count") == 1
    assert value(samples, "dts_scheduler_tick_duration_seconds_count") >= 1
    assert value(samples, "dts_scheduler_last_tick_timestamp_seconds") > time.time() - 60
    assert value(samples, "dts_scheduler_due_schedules") == 0
    assert value(samples, "dts_broker_queue_oldest_message_age_seconds", queue=QUEUE) > 0
    assert ("dts_broker_queue_messages", frozenset({("queue", "default")})) in samples
    assert total(samples, "dts_dependency_up", dependency="PostgreSQL") == 1
    # every job's health, measured by the gauges thread and appended to the scrape
    assert value(samples, "dts_job_health", team=job.team.name, job="nightly", health="ok") == 1
