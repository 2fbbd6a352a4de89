import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.exceptions import NotFound, ValidationFailed
from apps.runs.models import Run
from apps.runs.services.build import run_trigger
from apps.runs.services.moves import runs_retry_due
from apps.runs.services.publish import runs_publish
from apps.runs.states import TRANSITIONS, RunState, sources_of
from tests.factories import JobFactory, RunFactory

pytestmark = pytest.mark.django_db

ALL_PAIRS = list(itertools.product(RunState, RunState))


@pytest.mark.parametrize(("source", "target"), ALL_PAIRS, ids=[f"{s}->{t}" for s, t in ALL_PAIRS])
def test_a_guarded_update_moves_a_run_exactly_when_the_table_allows_it(source, target):
    # The guard every state change of apps.runs writes: UPDATE … WHERE state IN (its sources).
    run = RunFactory(state=source)

    moved = Run.objects.filter(id=run.id, state__in=sources_of(target)).update(state=target)

    run.refresh_from_db()
    allowed = target in TRANSITIONS[source]
    assert moved == allowed
    assert run.state == (target if allowed else source)


def test_trigger_records_a_queued_run_and_publishes_it_after_commit(
    django_capture_on_commit_callbacks, sent_tasks
):
    job = JobFactory(task_type="dts.echo", args={"greeting": "hi"}, queue="default")

    with django_capture_on_commit_callbacks() as callbacks:
        run = run_trigger(job=job)
    assert sent_tasks == []
    for callback in callbacks:
        callback()

    assert [sent["task_id"] for sent in sent_tasks] == [str(run.id)]
    assert run.state == RunState.QUEUED
    assert run.queued_at is not None
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


def test_publish_sends_each_run_and_writes_nothing(sent_tasks, django_assert_num_queries):
    sent = sent_tasks
    runs = list(Run.objects.select_related("job").filter(id__in=[RunFactory().id for _ in "ab"]))

    with django_assert_num_queries(0):
        runs_publish(runs=runs)

    assert [message["task_id"] for message in sent] == [str(run.id) for run in runs]


def test_due_retries_are_queued_and_published_after_commit(
    django_capture_on_commit_callbacks, sent_tasks
):
    now = timezone.now()
    due = RunFactory(state=RunState.RETRYING, attempt=2, next_attempt_at=now - timedelta(seconds=1))
    later = RunFactory(
        state=RunState.RETRYING, attempt=2, next_attempt_at=now + timedelta(minutes=1)
    )

    with django_capture_on_commit_callbacks() as callbacks:
        assert runs_retry_due(now=now) == 1
    assert sent_tasks == []
    for callback in callbacks:
        callback()

    due.refresh_from_db()
    later.refresh_from_db()
    assert (due.state, due.next_attempt_at, due.queued_at) == (RunState.QUEUED, None, now)
    assert later.state == RunState.RETRYING
    assert [sent["task_id"] for sent in sent_tasks] == [str(due.id)]


def test_a_message_says_whether_a_limit_applies_to_its_runs_start(sent_tasks):
    sent = sent_tasks
    plain = RunFactory(job=JobFactory(task_type="dts.noop", args={}))
    capped = RunFactory(job=JobFactory(max_concurrent_runs=2))
    rate_limited = RunFactory(job=JobFactory(rate_limit_per_minute=60))
    type_limited = RunFactory(job=JobFactory(task_type="tests.operator.limited", args={}))

    runs_publish(runs=[plain, capped, rate_limited, type_limited])

    assert [message["kwargs"] for message in sent] == [
        {"limited": False},
        {"limited": True},
        {"limited": True},
        {"limited": True},
    ]
