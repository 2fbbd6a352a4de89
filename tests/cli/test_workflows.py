"""`dts workflows` against a live server (whose broker no worker reads: runs stay queued)."""

import pytest
import yaml

from apps.workflows.models import Workflow, WorkflowRun
from cli.client import ExitCode
from tests.cli.conftest import as_json
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db(transaction=True)

ETL = """\
team: ops
name: etl
description: load, then report; alert when the load fails
steps:
  - name: load
    job: load
  - name: report
    job: report
    depends_on: [load]
  - name: alert
    job: report
    depends_on: [load]
    condition: on_failure
overlap_policy: skip
schedules:
  - cron_expression: "0 2 * * *"
    timezone: Europe/Paris
"""


@pytest.fixture
def jobs(team):
    return [
        JobFactory(team=team, name=name, task_type="dts.noop", args={})
        for name in ("load", "report")
    ]


def test_a_workflow_is_applied_shown_run_as_a_tree_cancelled_and_retried(dts, jobs, tmp_path):
    path = tmp_path / "etl.yaml"
    path.write_text(ETL)

    applied = dts("workflows", "apply", "-f", str(path))
    again = dts("workflows", "apply", "-f", str(path))
    listed = as_json(dts("workflows", "ls", "-o", "json"))
    shown = yaml.safe_load(dts("workflows", "show", "etl").stdout)
    tree = dts("workflows", "run", "etl").stdout
    run = WorkflowRun.objects.get()
    runs = as_json(dts("workflows", "runs", "etl", "-o", "json"))
    cancelled = dts("workflows", "cancel", str(run.id)).stdout
    refused = dts("workflows", "cancel", str(run.id), expect=ExitCode.INVALID)
    retried = as_json(dts("workflows", "retry", str(run.id), "-o", "json"))

    assert applied.stdout.strip() == "workflow ops/etl created"
    assert "No changes" in again.stderr
    assert [workflow["name"] for workflow in listed] == ["etl"]
    assert [step["name"] for step in shown["steps"]] == ["load", "report", "alert"]
    assert [schedule["description"] for schedule in shown["schedules"]] == [
        "At 02:00, Europe/Paris"
    ]
    assert f"etl run {run.id} running" in tree
    assert "load running" in tree
    assert "report pending" in tree
    assert "alert pending (on_failure)" in tree
    assert [found["id"] for found in runs] == [str(run.id)]
    assert f"etl run {run.id} cancelled" in cancelled
    assert "already cancelled" in refused.stderr
    assert retried["state"] == "running"


def test_a_workflow_file_with_a_fault_is_refused_at_its_line(dts, jobs, tmp_path):
    path = tmp_path / "etl.yaml"
    path.write_text(
        ETL.replace("depends_on: [load]\n    condition", "depends_on: [lode]\n    condition")
    )

    result = dts("workflows", "apply", "-f", str(path), expect=ExitCode.INVALID)

    assert f"Error: {path}:12: steps[2].depends_on: No step is named 'lode'." in result.stderr
    assert not Workflow.objects.exists()


def test_an_unknown_workflow_is_not_found(dts):
    dts("workflows", "run", "nope", expect=ExitCode.NOT_FOUND)
