"""/api/v1/workflows/ and /api/v1/workflow-runs/: defined, run, cancelled and retried."""

import pytest

from apps.runs.models import Run
from apps.runs.states import RunState
from apps.workflows.models import Workflow, WorkflowRun, WorkflowRunState

pytestmark = pytest.mark.django_db

ETL = {
    "team": "red",
    "name": "etl",
    "description": "load, then report",
    "steps": [
        {"name": "load", "job": "red job"},
        {"name": "report", "job": "red job", "depends_on": ["load"], "args": {}},
        {"name": "alert", "job": "red job", "depends_on": ["load"], "condition": "on_failure"},
    ],
}


def test_a_workflow_is_created_read_changed_and_deleted(world, client_as):
    admin = client_as("admin")

    created = admin.post("/api/v1/workflows/", ETL, "json")
    url = f"/api/v1/workflows/{created.json()['id']}/"
    shown = admin.get(url).json()
    changed = admin.patch(url, {"steps": [{"name": "only", "job": "red job"}]}, "json")
    listed = client_as("viewer").get("/api/v1/workflows/?team=red").json()
    deleted = admin.delete(url)

    assert created.status_code == 201, created.content
    assert shown["steps"][2] == {
        "name": "alert",
        "job": "red job",
        "args": None,
        "depends_on": ["load"],
        "condition": "on_failure",
        "pass_results": False,
    }
    assert changed.json()["steps"] == [
        {
            "name": "only",
            "job": "red job",
            "args": None,
            "depends_on": [],
            "condition": "on_success",
            "pass_results": False,
        }
    ]
    assert [workflow["name"] for workflow in listed["results"]] == ["etl"]
    assert deleted.status_code == 204
    assert not Workflow.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"steps": [{"name": "a", "job": "blue job"}]}, "steps[0].job"),
        ({"steps": [{"name": "a", "job": "red job", "depends_on": ["a"]}]}, "steps[0].depends_on"),
        (
            {
                "steps": [
                    {"name": "a", "job": "red job", "depends_on": ["b"]},
                    {"name": "b", "job": "red job", "depends_on": ["a"]},
                ]
            },
            "steps",
        ),
        ({"steps": [{"name": "a", "job": "red job", "condition": "sometimes"}]}, "steps"),
        ({"team": "blue"}, "team"),
        ({"steps": []}, "steps"),
    ],
)
def test_a_bad_workflow_is_refused_naming_the_field(world, client_as, change, field):
    response = client_as("admin").post("/api/v1/workflows/", {**ETL, **change}, "json")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert not Workflow.objects.exists()


def test_a_workflow_has_schedules_and_an_overlap_policy(world, client_as):
    admin = client_as("admin")
    nightly = {"cron_expression": "0 2 * * *", "timezone": "Europe/Paris"}

    created = admin.post(
        "/api/v1/workflows/", {**ETL, "overlap_policy": "skip", "schedules": [nightly]}, "json"
    ).json()
    url = f"/api/v1/workflows/{created['id']}/"
    refused = admin.patch(url, {"schedules": [nightly, {"kind": "interval"}]}, "json")
    unknown_kind = admin.patch(url, {"schedules": [{"timezone": "UTC"}]}, "json")
    kept = admin.patch(url, {"description": "nightly", "schedules": [nightly]}, "json").json()

    [schedule] = created["schedules"]
    assert created["overlap_policy"] == "skip"
    assert schedule["kind"] == "cron"  # inferred from the field given
    assert schedule["description"] == "At 02:00, Europe/Paris"
    assert schedule["next_fire_at"] is not None
    assert refused.status_code == 400
    assert refused.json()["error"]["field"] == "schedules[1].interval_seconds"
    assert unknown_kind.status_code == 400
    assert "schedules" in unknown_kind.json()["error"]["field"]
    assert kept["schedules"] == created["schedules"]  # the same row, the same next fire


def test_a_workflow_run_shows_each_steps_state_and_is_cancelled_then_retried(world, client_as):
    admin = client_as("admin")
    workflow = admin.post("/api/v1/workflows/", ETL, "json").json()

    triggered = client_as("operator").post(f"/api/v1/workflows/{workflow['id']}/trigger/")
    run_url = f"/api/v1/workflow-runs/{triggered.json()['id']}/"
    cancelled = client_as("operator").post(f"{run_url}cancel/")
    again = client_as("operator").post(f"{run_url}cancel/")
    retried = client_as("operator").post(f"{run_url}retry/")
    listed = client_as("viewer").get(f"/api/v1/workflow-runs/?workflow={workflow['id']}").json()

    assert triggered.status_code == 201
    steps = {step["name"]: step for step in triggered.json()["steps"]}
    assert (steps["load"]["state"], steps["load"]["run_state"]) == ("running", "queued")
    assert steps["report"] == {
        "name": "report",
        "state": "pending",
        "depends_on": ["load"],
        "condition": "on_success",
        "run": None,
        "run_state": None,
    }
    assert cancelled.json()["state"] == "cancelled"
    assert again.status_code == 409
    assert retried.json()["state"] == "running"
    assert [step["state"] for step in retried.json()["steps"]] == ["running", "pending", "pending"]
    assert Run.objects.filter(state=RunState.CANCELLED, workflow_run__isnull=False).count() == 1
    assert [run["id"] for run in listed["results"]] == [triggered.json()["id"]]
    assert WorkflowRun.objects.get().state == WorkflowRunState.RUNNING
