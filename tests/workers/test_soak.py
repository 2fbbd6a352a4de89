"""1,000 runs while pool processes and whole workers are killed: none is lost, and no
non-idempotent run executes twice. Bounded: it stops by itself within a few minutes."""

import random
import time

import psutil
import pytest

from apps.runs.models import Run
from apps.runs.services.build import run_trigger
from apps.runs.states import TERMINAL_STATES, RunState
from tests.workers.conftest import FAST, job
from tests.workers.operator_tasks import ledger, ledger_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

RUNS = 1000
CHILD_KILLS = 20
WORKER_KILLS = 5
# Every run ends within the heartbeat timeout plus 2 minutes of the last kill.
SETTLE_SECONDS = int(FAST["DTS_WORKER_HEARTBEAT_TIMEOUT"]) + 120


def test_a_thousand_runs_survive_killed_pool_processes_and_workers(cluster):
    cluster.scheduler()
    workers = [cluster.worker(f"soak-{n}", concurrency=2) for n in range(2)]
    once = job("once", "tests.ledger.record", {"key": "once", "seconds": 0.05}, max_attempts=1)
    again = job("again", "tests.ledger.record", {"key": "again", "seconds": 0.05}, idempotent=True)
    runs = [run_trigger(job=once if n % 2 else again).id for n in range(RUNS)]
    chooser = random.Random(7)  # noqa: S311 (a repeatable order of kills, not a secret)
    kills = ["child"] * CHILD_KILLS + ["worker"] * WORKER_KILLS
    chooser.shuffle(kills)

    for number, kind in enumerate(kills):
        time.sleep(1)
        slot = number % len(workers)
        victim = psutil.Process(workers[slot].pid)
        if kind == "child":
            children = victim.children()
            if children:
                chooser.choice(children).kill()
        else:
            for process in [*victim.children(), victim]:
                process.kill()
            workers[slot] = cluster.worker(f"soak-{number}", concurrency=2)

    deadline = time.monotonic() + SETTLE_SECONDS
    unfinished = Run.objects.filter(id__in=runs).exclude(state__in=TERMINAL_STATES)
    while unfinished.exists() and time.monotonic() < deadline:
        time.sleep(0.2)

    states = dict(Run.objects.filter(id__in=runs).values_list("id", "state"))
    assert len(states) == RUNS
    assert not unfinished.exists(), f"{unfinished.count()} runs never ended"
    assert set(states.values()) <= {RunState.SUCCEEDED, RunState.LOST}
    once_executions = [int(n) for n in ledger().hgetall(ledger_key("once:runs")).values()]
    assert max(once_executions) == 1, "a non-idempotent run executed twice"
    again_runs = Run.objects.filter(id__in=runs, job=again).values_list("id", flat=True)
    assert {states[run_id] for run_id in again_runs} == {RunState.SUCCEEDED}
