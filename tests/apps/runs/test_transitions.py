"""The state table against the code: every move a real code path makes is in TRANSITIONS, and
every entry of TRANSITIONS is made by some path, so the table holds nothing the code does not do."""

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.runs.metrics import LostDetector
from apps.runs.models import Run
from apps.runs.services.build import run_trigger
from apps.runs.services.maintenance import runs_reap_lost
from apps.runs.services.moves import (
    run_attempt_end,
    run_attempt_lost,
    run_cancel,
    run_cancel_confirm,
    run_start,
    runs_retry_due,
)
from apps.runs.states import TRANSITIONS, RunState
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

Move = tuple[RunState, RunState]


def queued(**job_fields) -> Run:
    return run_trigger(job=JobFactory(task_type="dts.echo", args={}, **job_fields))


def running(**job_fields) -> Run:
    run = queued(**job_fields)
    assert run_start(run_id=run.id, attempt=run.attempt, worker="worker-a", limited=False)
    return run


def retrying() -> Run:
    run = running(max_attempts=2)
    run_attempt_end(run_id=run.id, attempt=1, outcome=RunState.FAILED, error="boom")
    return run


def cancelling() -> Run:
    run = running()
    run_cancel(run=run)
    return run


def end(outcome: RunState, **fields) -> Callable[[Run], object]:
    return lambda run: run_attempt_end(
        run_id=run.id, attempt=Run.objects.get(id=run.id).attempt, outcome=outcome, **fields
    )


def reap(run: Run) -> int:
    later = timezone.now() + timedelta(hours=1)
    return runs_reap_lost(now=later, timeout=timedelta(minutes=1))


# Each path: how its run is made, and the real call that moves it.
PATHS: dict[str, tuple[Callable[[], Run], Callable[[Run], object]]] = {
    "start": (queued, lambda run: run_start(run_id=run.id, attempt=1, worker="worker-a")),
    "start unlimited": (
        queued,
        lambda run: run_start(run_id=run.id, attempt=1, worker="worker-a", limited=False),
    ),
    "succeed": (running, end(RunState.SUCCEEDED, result={"ok": True})),
    "fail, no attempt left": (running, end(RunState.FAILED, error="boom")),
    "time out": (running, end(RunState.TIMED_OUT, error="slow")),
    "fail, attempts left": (lambda: running(max_attempts=2), end(RunState.FAILED, error="boom")),
    "retry due": (retrying, lambda run: runs_retry_due(now=timezone.now() + timedelta(days=1))),
    "lost": (
        running,
        lambda run: run_attempt_lost(
            run_id=run.id, attempt=1, reason="gone", detected_by=LostDetector.WORKER
        ),
    ),
    "reaper": (running, reap),
    "cancel queued": (queued, lambda run: run_cancel(run=run)),
    "cancel retrying": (retrying, lambda run: run_cancel(run=run)),
    "cancel running": (running, lambda run: run_cancel(run=run)),
    "revoked by Celery": (running, lambda run: run_cancel_confirm(run_id=run.id, attempt=1)),
    "cancelling, stopped": (cancelling, lambda run: run_cancel_confirm(run_id=run.id, attempt=1)),
    "cancelling, failed on the signal": (cancelling, end(RunState.TIMED_OUT, error="stop")),
    "cancelling, process lost": (cancelling, reap),
    "cancelling, finished first": (cancelling, end(RunState.SUCCEEDED, result=None)),
}


def observed_move(path: str) -> Move:
    make, act = PATHS[path]
    run = make()
    before = RunState(Run.objects.get(id=run.id).state)
    act(run)
    return before, RunState(Run.objects.get(id=run.id).state)


@pytest.mark.parametrize("path", PATHS)
def test_every_move_a_code_path_makes_is_in_the_table(path):
    source, target = observed_move(path)

    assert source != target, f"{path} moved nothing"
    assert target in TRANSITIONS[source], f"{path} moved {source} -> {target}"


def test_every_move_in_the_table_is_made_by_some_code_path():
    table = {(source, target) for source, targets in TRANSITIONS.items() for target in targets}

    made = {observed_move(path) for path in PATHS}

    assert table - made == set()
