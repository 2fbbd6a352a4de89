"""Workflows on real workers and a scheduler, whose advancer moves them on (the fault tests'
cluster): a fan-out and fan-in runs each step once and its last step reads the others' results;
a worker killed in the middle of a workflow is reaped like any, its step retried on another, and
the workflow goes on to its end."""

import time

import psutil
import pytest

from apps.jobs.services import job_create
from apps.runs.models import Run
from apps.runs.states import RunState
from apps.workflows.models import WorkflowRun, WorkflowRunState, WorkflowStepRun
from apps.workflows.services import workflow_create, workflow_trigger
from tests.factories import TeamFactory
from tests.workers.conftest import executions

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def wait_for_workflow(run_id, timeout=60) -> WorkflowRun:
    deadline = time.monotonic() + timeout
    while (run := WorkflowRun.objects.get(id=run_id)).state == WorkflowRunState.RUNNING:
        steps = dict(run.steps.values_list("name", "state"))
        assert time.monotonic() < deadline, f"workflow run still running: {steps}"
        time.sleep(0.1)
    return run


def recorder(team, key, seconds=0, **policy):
    return job_create(
        team=team,
        name=key,
        task_type="tests.ledger.record",
        args={"key": key, "seconds": seconds},
        queue="faults",
        **policy,
    )


def test_a_fan_out_and_fan_in_runs_every_step_once_and_passes_results(cluster):
    cluster.worker("left", concurrency=2)
    cluster.worker("right", concurrency=2)
    cluster.scheduler()  # its advancer moves the workflow on
    team = TeamFactory(name="data")
    total = job_create(team=team, name="total", task_type="tests.workflow.total", queue="faults")
    branches = [f"branch-{n}" for n in range(6)]
    steps = [
        {"name": "start", "job": recorder(team, "start")},
        *(
            {"name": key, "job": recorder(team, key, 0.2), "depends_on": ["start"]}
            for key in branches
        ),
        {"name": "total", "job": total, "depends_on": branches, "pass_results": True},
    ]
    workflow = workflow_create(team=team, name="fan", steps=steps)

    done = wait_for_workflow(workflow_trigger(workflow=workflow).id)

    assert done.state == WorkflowRunState.SUCCEEDED
    assert [executions(key) for key in ["start", *branches]] == [1] * 7
    assert Run.objects.filter(workflow_run=done).count() == 8
    assert done.steps.get(name="total").run.result == 6  # each branch's first execution: 1


def test_a_worker_killed_mid_workflow_is_reaped_and_the_workflow_goes_on(cluster):
    doomed = cluster.worker("doomed")
    cluster.scheduler()
    team = TeamFactory(name="data")
    steps = [
        {"name": "first", "job": recorder(team, "first")},
        {
            "name": "long",
            "job": recorder(team, "long", 4, max_attempts=2, retry_backoff_seconds=1),
            "depends_on": ["first"],
        },
        {"name": "last", "job": recorder(team, "last"), "depends_on": ["long"]},
    ]
    run = workflow_trigger(workflow=workflow_create(team=team, name="chain", steps=steps))
    deadline = time.monotonic() + 30
    while not Run.objects.filter(
        workflow_step__workflow_run=run, workflow_step__name="long", state=RunState.RUNNING
    ).exists():
        assert time.monotonic() < deadline, "the long step never started"
        time.sleep(0.1)

    for process in [
        *psutil.Process(doomed.pid).children(recursive=True),
        psutil.Process(doomed.pid),
    ]:
        process.kill()
    cluster.worker("survivor")

    done = wait_for_workflow(run.id, timeout=90)
    assert done.state == WorkflowRunState.SUCCEEDED
    long_run = WorkflowStepRun.objects.get(workflow_run=run, name="long").run
    outcomes = list(long_run.attempts.order_by("number").values_list("outcome", "worker"))
    assert outcomes[0][0] == RunState.LOST
    assert outcomes[1][0] == RunState.SUCCEEDED
    assert outcomes[1][1].startswith("survivor@")
    assert (executions("first"), executions("last")) == (1, 1)
