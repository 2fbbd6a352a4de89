import itertools
import uuid

import pytest

from apps.core.exceptions import NotFound, ValidationFailed
from apps.runs.models import Run
from apps.runs.services import (
    run_fail,
    run_start,
    run_succeed,
    run_transition,
    run_trigger,
    runs_publish,
)
from apps.runs.states import TRANSITIONS, RunState
from tests.factories import JobFactory, RunFactory

pytestmark = pytest.mark.django_db

ALL_PAIRS = list(itertools.product(RunState, RunState))


@pytest.mark.parametrize(("source", "target"), ALL_PAIRS, ids=[f"{s}->{t}" for s, t in ALL_PAIRS])
def test_a_transition_happens_exactly_when_the_table_allows_it(source, target):
    run = RunFactory(state=source)

    moved = run_transition(run_id=run.id, to=target)

    run.refresh_from_db()
    allowed = target in TRANSITIONS[source]
    assert moved is allowed
    assert run.state == (target if allowed else source)


def test_a_late_duplicate_success_signal_cannot_rewrite_a_failed_run():
    run = RunFactory(state=RunState.RUNNING)
    run_fail(run_id=run.id, error="ValueError: boom", traceback="Traceback ...")

    moved = run_succeed(run_id=run.id, result={"late": True})

    run.refresh_from_db()
    assert moved is False
    assert run.state == RunState.FAILED
    assert run.result is None
    assert run.error == "ValueError: boom"


def test_a_run_starts_once_and_a_redelivered_message_is_refused():
    run = RunFactory(state=RunState.QUEUED)

    first = run_start(run_id=run.id, worker="worker-a")
    second = run_start(run_id=run.id, worker="worker-b")

    assert first is not None
    assert first.state == RunState.RUNNING
    assert first.worker == "worker-a"
    assert first.started_at is not None
    assert second is None


def test_starting_an_unknown_run_is_refused():
    assert run_start(run_id=uuid.uuid4(), worker="worker-a") is None


def test_a_result_that_is_not_json_fails_the_run_with_the_reason():
    run = RunFactory(state=RunState.RUNNING)

    run_succeed(run_id=run.id, result={"handle": object()})

    run.refresh_from_db()
    assert run.state == RunState.FAILED
    assert "cannot be stored as JSON" in run.error


def test_trigger_records_a_pending_run_with_the_job_definition(django_capture_on_commit_callbacks):
    job = JobFactory(task_type="dts.echo", args={"greeting": "hi"}, queue="default")

    with django_capture_on_commit_callbacks() as callbacks:
        run = run_trigger(job=job)

    assert len(callbacks) == 1
    assert run.state == RunState.PENDING
    assert (run.task_type, run.args, run.queue, run.attempt) == (
        "dts.echo",
        {"greeting": "hi"},
        "default",
        1,
    )


def test_trigger_with_override_args_validates_them_and_writes_nothing_when_bad():
    job = JobFactory(task_type="dts.sleep", args={"seconds": 1})

    with pytest.raises(ValidationFailed) as raised:
        run_trigger(job=job, args={"seconds": "soon"})

    assert raised.value.field == "args"
    assert Run.objects.count() == 0


def test_trigger_of_a_job_whose_task_type_is_unregistered_is_refused():
    job = JobFactory(task_type="billing.gone")

    with pytest.raises(NotFound) as raised:
        run_trigger(job=job)

    assert raised.value.field == "task_type"
    assert Run.objects.count() == 0


def test_publish_marks_a_pending_run_queued_but_never_moves_a_started_one(monkeypatch):
    sent = []
    monkeypatch.setattr(
        "apps.runs.services.app.send_task", lambda *args, **kwargs: sent.append(kwargs)
    )
    pending = RunFactory(state=RunState.PENDING)
    already_running = RunFactory(state=RunState.RUNNING)

    runs_publish(runs=[pending, already_running])

    pending.refresh_from_db()
    already_running.refresh_from_db()
    assert [message["task_id"] for message in sent] == [str(pending.id), str(already_running.id)]
    assert pending.state == RunState.QUEUED
    assert pending.published_at is not None
    assert already_running.state == RunState.RUNNING
    assert already_running.published_at is not None
