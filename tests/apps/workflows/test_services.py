"""Workflows through apps.workflows.services: their graphs refused or accepted, and their runs moved
on by their steps' runs ending, as the run services end them."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from prometheus_client import REGISTRY

from apps.core.exceptions import InvalidTransition, ValidationFailed
from apps.events.envelope import envelope
from apps.events.models import OutboxEvent
from apps.events.validation import event_problems
from apps.jobs.services import job_delete
from apps.runs.models import Run, RunTrigger
from apps.runs.services.moves import run_attempt_end
from apps.runs.states import RunState
from apps.tasktypes.context import run_context
from apps.workflows.context import upstream_results
from apps.workflows.models import StepState, WorkflowRun, WorkflowRunState, WorkflowStepRun
from apps.workflows.services import (
    MAX_STEPS,
    workflow_create,
    workflow_run_cancel,
    workflow_run_retry,
    workflow_runs_advance,
    workflow_runs_purge_expired,
    workflow_steps_running,
    workflow_trigger,
)
from tests.factories import JobFactory, TeamFactory
from workers.scheduler import WorkflowAdvancer

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    return TeamFactory(name="ops")


@pytest.fixture
def job(team):
    return JobFactory(team=team, name="load", task_type="dts.echo", args={"greeting": "hi"})


def step(name, job, *depends_on, **fields):
    return {"name": name, "job": job, "depends_on": list(depends_on), **fields}


def sleeper(team):
    return JobFactory(team=team, name="nap", task_type="dts.sleep", args={})


def states(workflow_run):
    return {step.name: step.state for step in workflow_run.steps.all()}


def run_of(workflow_run, name):
    return workflow_run.steps.get(name=name).run


@pytest.fixture
def end():
    """End a step's run as a worker would, then move the workflow runs on as the scheduler's
    advancer does when woken."""

    def end(workflow_run, name, outcome=RunState.SUCCEEDED, result=None):
        run = run_of(workflow_run, name)
        Run.objects.filter(id=run.id).update(state=RunState.RUNNING, started_at=timezone.now())
        assert run_attempt_end(run_id=run.id, attempt=1, outcome=outcome, result=result)
        assert workflow_runs_advance() == 1
        workflow_run.refresh_from_db()

    return end


@pytest.mark.parametrize(
    ("steps", "field", "message"),
    [
        ([], "steps", "at least one step"),
        (lambda j: [step("a", j, "b"), step("b", j, "a")], "steps", "cycle: a → b → a"),
        (lambda j: [step("a", j, "c"), step("b", j, "a"), step("c", j, "b")], "steps", "cycle"),
        (lambda j: [step("a", j, "nope")], "steps[0].depends_on", "No step is named 'nope'"),
        (lambda j: [step("a", j, "a")], "steps[0].depends_on", "itself"),
        (lambda j: [step("a", j), step("b", j, "a", "a")], "steps[1].depends_on", "twice"),
        (lambda j: [step("a", j), step("a", j)], "steps[1].name", "steps[0] has this name"),
        (lambda j: [step("Bad Name", j)], "steps[0].name", "lower-case"),
        (lambda j: [step("a", j, condition="on_failure")], "steps[0].condition", "needs a step"),
        (lambda j: [step("a", sleeper(j.team), args={"seconds": -1})], "steps[0].args", "-1"),
        (
            lambda j: [step("a", JobFactory(team=TeamFactory(name="red"), name="theirs"))],
            "steps[0].job",
            "not a job of team ops",
        ),
        (
            lambda j: [step(f"s{n}", j) for n in range(MAX_STEPS + 1)],
            "steps",
            f"at most {MAX_STEPS}",
        ),
    ],
)
def test_a_graph_that_is_no_workflow_is_refused_naming_the_field(team, job, steps, field, message):
    with pytest.raises(ValidationFailed) as refused:
        workflow_create(team=team, name="etl", steps=steps(job) if callable(steps) else steps)

    assert refused.value.field == field
    assert message in refused.value.message
    assert not team.workflows.exists()


def test_a_chain_runs_each_step_once_its_dependency_succeeded(team, job, end):
    workflow = workflow_create(
        team=team, name="etl", steps=[step("load", job), step("transform", job, "load")]
    )

    run = workflow_trigger(workflow=workflow)

    assert states(run) == {"load": "running", "transform": "pending"}
    first = run_of(run, "load")
    assert (first.workflow_run_id, first.state, first.trigger) == (run.id, "queued", "manual")
    end(run, "load")
    assert states(run) == {"load": "succeeded", "transform": "running"}
    end(run, "transform")
    assert run.state == WorkflowRunState.SUCCEEDED
    assert run.finished_at is not None


def test_fan_in_waits_for_every_branch(team, job, end):
    steps = [step("a", job), step("b", job, "a"), step("c", job, "a"), step("d", job, "b", "c")]
    run = workflow_trigger(workflow=workflow_create(team=team, name="fan", steps=steps))

    end(run, "a")
    end(run, "b")
    assert states(run)["d"] == "pending"
    end(run, "c")

    assert states(run)["d"] == "running"
    assert Run.objects.filter(workflow_run=run).count() == 4


def test_a_failure_skips_what_needed_success_runs_its_handler_and_fails_the_run_if_unhandled(
    team, job, end
):
    steps = [
        step("load", job),
        step("report", job, "load"),
        step("alert", job, "load", condition="on_failure"),
        step("cleanup", job, "report", condition="always"),
    ]
    workflow = workflow_create(team=team, name="etl", steps=steps)
    handled = workflow_trigger(workflow=workflow)
    workflow.steps.filter(name="alert").delete()
    unhandled_workflow = workflow_create(
        team=team, name="bare", steps=[step("load", job), step("report", job, "load")]
    )
    unhandled = workflow_trigger(workflow=unhandled_workflow)

    end(handled, "load", RunState.FAILED)
    end(handled, "alert")
    end(handled, "cleanup")
    end(unhandled, "load", RunState.FAILED)

    assert states(handled) == {
        "load": "failed",
        "report": "skipped",
        "alert": "succeeded",
        "cleanup": "succeeded",
    }
    assert handled.state == WorkflowRunState.SUCCEEDED  # the failure was handled by "alert"
    assert states(unhandled) == {"load": "failed", "report": "skipped"}
    assert unhandled.state == WorkflowRunState.FAILED


def test_a_step_reads_its_dependencies_results_and_too_large_ones_fail_it(team, job, end):
    steps = [step("load", job), step("sum", job, "load", pass_results=True)]
    workflow = workflow_create(team=team, name="etl", steps=steps)
    run = workflow_trigger(workflow=workflow)
    big = workflow_trigger(workflow=workflow)

    end(run, "load", result={"rows": 42})
    end(big, "load", result="x" * 70_000)

    with run_context(str(run_of(run, "sum").id), job_id=job.id):
        assert upstream_results() == {"load": {"rows": 42}}
    refused = run_of(big, "sum")
    assert (refused.state, states(big)["sum"]) == (RunState.FAILED, StepState.FAILED)
    assert "more than 65536" in refused.error
    assert big.state == WorkflowRunState.FAILED


def test_cancel_cancels_every_unfinished_step_and_ends_the_run_cancelled(team, job):
    steps = [step("a", job), step("b", job, "a")]
    run = workflow_trigger(workflow=workflow_create(team=team, name="etl", steps=steps))

    workflow_run_cancel(workflow_run=run)

    run.refresh_from_db()
    assert run.state == WorkflowRunState.CANCELLED
    assert states(run)["b"] == "cancelled"
    assert run_of(run, "a").state == RunState.CANCELLED
    with pytest.raises(InvalidTransition):
        workflow_run_cancel(workflow_run=run)


def test_retry_from_failed_runs_only_the_failed_and_skipped_steps(team, job, end):
    steps = [step("a", job), step("b", job, "a"), step("c", job, "b")]
    run = workflow_trigger(workflow=workflow_create(team=team, name="etl", steps=steps))
    end(run, "a")
    first_a = run_of(run, "a")
    end(run, "b", RunState.FAILED)
    assert run.state == WorkflowRunState.FAILED

    workflow_run_retry(workflow_run=run)

    run.refresh_from_db()
    assert states(run) == {"a": "succeeded", "b": "running", "c": "pending"}
    assert run_of(run, "a") == first_a
    assert run_of(run, "b").trigger == RunTrigger.RETRY
    end(run, "b")
    end(run, "c")
    assert run.state == WorkflowRunState.SUCCEEDED
    with pytest.raises(InvalidTransition):
        workflow_run_retry(workflow_run=run)


def test_the_advancer_moves_on_only_what_a_run_ending_left_to_do(team, job):
    steps = [step("a", job), step("b", job, "a")]
    run = workflow_trigger(workflow=workflow_create(team=team, name="etl", steps=steps))
    assert workflow_runs_advance() == 0  # "a" is under way: nothing to do
    Run.objects.filter(id=run_of(run, "a").id).update(state=RunState.SUCCEEDED)

    assert workflow_runs_advance() == 1
    assert states(run) == {"a": "succeeded", "b": "running"}
    assert workflow_runs_advance() == 0


def test_a_job_a_workflow_runs_cannot_be_deleted(team, job):
    workflow_create(team=team, name="etl", steps=[step("a", job)])

    with pytest.raises(InvalidTransition) as refused:
        job_delete(job=job)

    assert "etl" in refused.value.message


@pytest.mark.django_db(transaction=True)
def test_two_advancers_at_once_start_a_ready_step_once():
    """Two scheduler replicas, both woken by the same ends, move the same workflow runs on."""
    team = TeamFactory(name="ops")
    job = JobFactory(team=team, name="noop", task_type="dts.noop", args={})
    steps = [step("b", job), step("c", job), step("d", job, "b", "c")]
    workflow = workflow_create(team=team, name="fan-in", steps=steps)
    runs = [workflow_trigger(workflow=workflow) for _ in range(10)]
    Run.objects.filter(workflow_run__in=runs).update(
        state=RunState.SUCCEEDED, finished_at=timezone.now()
    )
    barrier = threading.Barrier(2)
    moved = []

    def advancer():
        try:
            barrier.wait()
            moved.append(workflow_runs_advance())
        finally:
            connection.close()

    threads = [threading.Thread(target=advancer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for run in runs:
        assert states(run) == {"b": "succeeded", "c": "succeeded", "d": "running"}
        assert Run.objects.filter(workflow_run=run).count() == 3
    assert sum(moved) >= 10  # each workflow run moved on by one of them, or by both in turn


def test_each_change_of_a_workflow_run_is_an_event_keyed_by_its_workflow(team, job, end):
    steps = [step("a", job), step("b", job, "a")]
    workflow = workflow_create(team=team, name="etl", steps=steps)
    run = workflow_trigger(workflow=workflow)
    end(run, "a", RunState.FAILED)
    workflow_run_retry(workflow_run=run)
    workflow_run_cancel(workflow_run=run)

    events = [
        envelope(event)
        for event in OutboxEvent.objects.filter(type__startswith="dts.workflow_run.").order_by(
            "sequence"
        )
    ]

    assert [(event["type"].rsplit(".", 1)[1], event["data"]["steps"]) for event in events] == [
        ("started", {"a": "running", "b": "pending"}),
        ("failed", {"a": "failed", "b": "skipped"}),
        ("retried", {"a": "pending", "b": "pending"}),
        ("steps_changed", {"a": "running"}),
        ("cancelled", {"a": "cancelled", "b": "cancelled"}),
    ]
    assert all(event_problems(event) == [] for event in events)
    assert {event["data"]["workflow_id"] for event in events} == {workflow.id}
    assert {event["subject"] for event in events} == {f"workflow_runs/{run.id}"}
    assert events[0]["data"]["trigger"] == "manual"


def test_ended_workflow_runs_past_the_retention_are_purged_their_steps_runs_kept(team, job):
    workflow = workflow_create(team=team, name="etl", steps=[step("a", job)])
    old, recent, running = (workflow_trigger(workflow=workflow) for _ in range(3))
    now = timezone.now()
    WorkflowRun.objects.filter(id__in=[old.id, recent.id]).update(
        state=WorkflowRunState.SUCCEEDED, finished_at=now - timedelta(days=31)
    )
    WorkflowRun.objects.filter(id=recent.id).update(finished_at=now - timedelta(days=29))
    WorkflowRun.objects.filter(id=running.id).update(created_at=now - timedelta(days=90))
    old_step_run = run_of(old, "a")

    assert workflow_runs_purge_expired(now=now, keep=timedelta(days=30)) == 1

    assert set(WorkflowRun.objects.values_list("id", flat=True)) == {recent.id, running.id}
    assert not WorkflowStepRun.objects.filter(workflow_run_id=old.id).exists()
    assert Run.objects.get(id=old_step_run.id).workflow_run_id is None


def test_workflow_runs_started_and_ended_are_counted_after_their_commit(
    team, job, django_capture_on_commit_callbacks
):
    workflow = workflow_create(team=team, name="etl", steps=[step("a", job)])

    def sample(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (
        sample("dts_workflow_runs_started_total", trigger="api"),
        sample("dts_workflow_runs_finished_total", state="cancelled"),
        sample("dts_workflow_run_duration_seconds_count", state="cancelled"),
    )
    with django_capture_on_commit_callbacks(execute=True):
        run = workflow_trigger(workflow=workflow, trigger=RunTrigger.API)
    with django_capture_on_commit_callbacks(execute=True):
        workflow_run_cancel(workflow_run=run)

    after = (
        sample("dts_workflow_runs_started_total", trigger="api"),
        sample("dts_workflow_runs_finished_total", state="cancelled"),
        sample("dts_workflow_run_duration_seconds_count", state="cancelled"),
    )
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 1]


def test_settled_moves_only_the_workflow_runs_whose_running_steps_have_all_ended(team, job):
    steps = [step("a", job), step("b", job), step("join", job, "a", "b")]
    run = workflow_trigger(workflow=workflow_create(team=team, name="fan", steps=steps))
    ran = {name: run_of(run, name) for name in ("a", "b")}

    assert workflow_steps_running() == {str(run.id): 2}
    Run.objects.filter(id=ran["a"].id).update(state=RunState.SUCCEEDED)
    assert workflow_steps_running() == {str(run.id): 1}
    assert workflow_runs_advance(settled=True) == 0  # b still runs: nothing can be ready
    Run.objects.filter(id=ran["b"].id).update(state=RunState.SUCCEEDED)
    assert workflow_runs_advance(settled=True) == 1

    assert states(run) == {"a": "succeeded", "b": "succeeded", "join": "running"}
    assert workflow_steps_running() == {str(run.id): 1}


@pytest.mark.django_db(transaction=True)
def test_an_end_wakes_the_advancer_naming_its_workflow_run_which_it_moves_once_all_ended():
    """The advancer counts each workflow run's ends, named by the wake-ups, down from the steps it
    had running, and moves it the moment they have all ended (the join of a fan-in)."""
    team = TeamFactory(name="ops")
    # On a queue the tests' worker does not read: the test ends the steps' runs itself.
    job = JobFactory(team=team, name="noop", task_type="dts.noop", args={}, queue="faults")
    steps = [step("a", job), step("b", job), step("join", job, "a", "b")]
    run = workflow_trigger(workflow=workflow_create(team=team, name="fan", steps=steps))
    advancer = WorkflowAdvancer()
    try:
        assert advancer.advance()
        assert advancer.running == {str(run.id): 2}
        advancer.listener.received(0.01)  # listening from now

        for name in ("a", "b"):
            step_run = run_of(run, name)
            Run.objects.filter(id=step_run.id).update(
                state=RunState.RUNNING, started_at=timezone.now()
            )
            assert run_attempt_end(run_id=step_run.id, attempt=1, outcome=RunState.SUCCEEDED)
            ended = advancer.listener.received(5)
            assert ended == [str(run.id)]
            assert advancer.settle(ended) is False  # it knew the workflow run

            moved = states(run)["join"] == "running"
            assert moved == (name == "b")
    finally:
        advancer.listener.close()
        connection.close()
