"""Under load: workers restarted one after another, Redis restarted (with and without its data),
PostgreSQL restarted. Nothing is lost, nothing runs twice, nothing stays stuck. Each test restores
the service it restarts, even when it fails."""

import shutil
import signal
import time
from pathlib import Path

import pytest
from django.db import close_old_connections, connection

from apps.runs.models import Run
from apps.runs.services.build import run_trigger
from apps.runs.states import TERMINAL_STATES, RunState
from tests.backing_services.control import instance_of, restored, service
from tests.workers.conftest import FAST, job
from tests.workers.operator_tasks import ledger, ledger_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def trigger_load(record_job, count: int) -> list:
    return [run_trigger(job=record_job).id for _ in range(count)]


def wait_all_terminal(run_ids: list, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        close_old_connections()
        try:
            states = dict(Run.objects.filter(id__in=run_ids).values_list("id", "state"))
        except Exception:  # the database may still be coming back
            states = {}
        if states and set(states.values()) <= TERMINAL_STATES and len(states) == len(run_ids):
            return states
        assert time.monotonic() < deadline, f"not all runs ended after {timeout} s: {states}"
        time.sleep(0.2)


def executions_per_run(key: str) -> list[int]:
    return [int(n) for n in ledger().hgetall(ledger_key(f"{key}:runs")).values()]


def test_a_rolling_restart_loses_nothing_and_runs_nothing_twice(cluster):
    cluster.scheduler()
    workers = [cluster.worker(f"rolling-{n}", concurrency=2) for n in range(2)]
    steady = job("steady", "tests.ledger.record", {"key": "steady", "seconds": 0.2})
    runs = trigger_load(steady, 300)

    for restart in range(10):
        slot = restart % len(workers)
        workers[slot].send_signal(signal.SIGTERM)  # warm shutdown: finish what runs, then exit
        workers[slot].wait(timeout=60)
        workers[slot] = cluster.worker(f"rolling-{restart}", concurrency=2)

    states = wait_all_terminal(runs, timeout=180)
    assert set(states.values()) == {RunState.SUCCEEDED}
    assert sorted(executions_per_run("steady")) == [1] * len(runs)


def retrying_job(*, seconds: float):
    """Runs that ride out an outage: a failed attempt (the ledger's Redis was down) is retried."""
    return job(
        "steady",
        "tests.ledger.record",
        {"key": "steady", "seconds": seconds},
        idempotent=True,
        max_attempts=5,
        retry_backoff_seconds=1,
    )


def finished_count(run_ids: list) -> int:
    close_old_connections()
    return Run.objects.filter(id__in=run_ids, state__in=TERMINAL_STATES).count()


def redis_data() -> Path:
    return instance_of("redis").folder / "data"


@pytest.mark.serial
@pytest.mark.parametrize("keep_data", [True, False], ids=["with-data", "without-data"])
def test_redis_restarted_under_load_loses_nothing(cluster, keep_data):
    cluster.scheduler()
    cluster.worker("redis-a", concurrency=2)
    steady = retrying_job(seconds=0.1)
    runs = trigger_load(steady, 200)
    time.sleep(2)

    with restored("redis"):
        service("redis", "stop")
        if not keep_data:
            shutil.rmtree(redis_data())
            redis_data().mkdir()
        time.sleep(2)
    finished_at_restart = finished_count(runs)
    resumed_at = time.monotonic()
    while finished_count(runs) == finished_at_restart and finished_at_restart < len(runs):
        assert time.monotonic() - resumed_at < 60, "consumption did not resume within 60 s"
        time.sleep(0.5)

    states = wait_all_terminal(runs, timeout=120)
    assert set(states.values()) == {RunState.SUCCEEDED}
    if keep_data:
        # The ledger lives in the same Redis: kept with its data, it shows no run ran twice.
        assert max(executions_per_run("steady")) == 1


@pytest.mark.serial
def test_postgresql_restarted_under_load_leaves_no_run_stuck(cluster):
    cluster.scheduler()
    cluster.worker("pg-a", concurrency=2)
    steady = retrying_job(seconds=0.2)
    runs = trigger_load(steady, 150)
    time.sleep(2)

    connection.close()
    with restored("postgres"):
        service("postgres", "stop")
        time.sleep(3)

    states = wait_all_terminal(runs, timeout=int(FAST["DTS_WORKER_HEARTBEAT_TIMEOUT"]) + 120)
    assert set(states.values()) == {RunState.SUCCEEDED}
