"""Every endpoint as anonymous, viewer, operator and admin of the job's team, an admin of another
team, and a superuser: the status codes, and lists that never show another team's objects."""

import pytest
from django.utils import timezone

from apps.notifications.models import Delivery, DeliveryState, Webhook
from apps.notifications.services import webhook_ping
from apps.runs.states import RunState
from apps.workflows.models import StepState, WorkflowRun, WorkflowRunState
from apps.workflows.services import workflow_create, workflow_trigger
from tests.apps.api.conftest import ACTORS

pytestmark = pytest.mark.django_db


def expect(success: int, needed: str) -> dict[str, int]:
    """`success` for the roles at or above `needed` (and the superuser), 403 below, 404 for the
    other team, 401 for anonymous."""
    order = ["viewer", "operator", "admin"]
    codes = {role: success if order.index(role) >= order.index(needed) else 403 for role in order}
    return {"anonymous": 401, **codes, "other_team": 404, "superuser": success}


def workflow_of(world):
    """Team red's workflow, made the first time a row asks for it."""
    if not hasattr(world, "workflow"):
        world.workflow = workflow_create(
            team=world.red, name="etl", steps=[{"name": "a", "job": world.job}]
        )
    return world.workflow


def workflow_run_of(world, state=WorkflowRunState.RUNNING):
    """A run of it, in `state` (its one step too, when it ended)."""
    run = workflow_trigger(workflow=workflow_of(world))
    if state != WorkflowRunState.RUNNING:
        WorkflowRun.objects.filter(id=run.id).update(state=state)
        run.steps.update(state=StepState.FAILED)
    return run


def webhook_of(world):
    """Team red's webhook, made the first time a row asks for it."""
    if not hasattr(world, "webhook"):
        world.webhook = Webhook.objects.create(
            team=world.red, name="ops", url="https://93.184.215.14/hooks", secret="x" * 16
        )
    return world.webhook


def failed_delivery_of(world):
    delivery = webhook_ping(webhook=webhook_of(world))
    Delivery.objects.filter(id=delivery.id).update(state=DeliveryState.FAILED)
    return delivery


def schedule_url(world, tail: str = "") -> str:
    return f"/api/v1/jobs/{world.job.id}/schedules/{world.schedule.id}/{tail}"


ENDPOINTS = {
    "job": ("get", lambda w: f"/api/v1/jobs/{w.job.id}/", None, expect(200, "viewer")),
    "job update": (
        "patch",
        lambda w: f"/api/v1/jobs/{w.job.id}/",
        {"description": "changed"},
        expect(200, "admin"),
    ),
    "job delete": ("delete", lambda w: f"/api/v1/jobs/{w.job.id}/", None, expect(204, "admin")),
    "job trigger": (
        "post",
        lambda w: f"/api/v1/jobs/{w.job.id}/trigger/",
        {},
        expect(201, "operator"),
    ),
    "job pause": (
        "post",
        lambda w: f"/api/v1/jobs/{w.job.id}/pause/",
        None,
        expect(200, "operator"),
    ),
    "job resume": (
        "post",
        lambda w: f"/api/v1/jobs/{w.job.id}/resume/",
        None,
        expect(200, "operator"),
    ),
    "run": ("get", lambda w: f"/api/v1/runs/{w.queued_run.id}/", None, expect(200, "viewer")),
    "run log": (
        "get",
        lambda w: f"/api/v1/runs/{w.queued_run.id}/log/",
        None,
        expect(200, "viewer"),
    ),
    "run cancel": (
        "post",
        lambda w: f"/api/v1/runs/{w.queued_run.id}/cancel/",
        None,
        expect(200, "operator"),
    ),
    "run retry": (
        "post",
        lambda w: f"/api/v1/runs/{w.failed_run.id}/retry/",
        None,
        expect(201, "operator"),
    ),
    "schedules": (
        "get",
        lambda w: f"/api/v1/jobs/{w.job.id}/schedules/",
        None,
        expect(200, "viewer"),
    ),
    "schedule create": (
        "post",
        lambda w: f"/api/v1/jobs/{w.job.id}/schedules/",
        {"kind": "cron", "cron_expression": "0 3 * * *", "timezone": "Europe/Paris"},
        expect(201, "admin"),
    ),
    "schedule": ("get", lambda w: schedule_url(w), None, expect(200, "viewer")),
    "schedule update": (
        "patch",
        lambda w: schedule_url(w),
        {"interval_seconds": 120},
        expect(200, "admin"),
    ),
    "schedule delete": ("delete", lambda w: schedule_url(w), None, expect(204, "admin")),
    "schedule pause": (
        "post",
        lambda w: schedule_url(w, "pause/"),
        {"note": "maintenance"},
        expect(200, "operator"),
    ),
    "schedule preview": (
        "get",
        lambda w: schedule_url(w, "preview/?count=3"),
        None,
        expect(200, "viewer"),
    ),
    "schedule explain": (
        "get",
        lambda w: schedule_url(w, "explain/"),
        None,
        expect(200, "viewer"),
    ),
    "team": ("get", lambda w: f"/api/v1/teams/{w.red.id}/", None, expect(200, "viewer")),
    "team update": (
        "patch",
        lambda w: f"/api/v1/teams/{w.red.id}/",
        {"max_active_schedules": 5},
        # Its settings are the platform's to change, not its admins'.
        {**expect(200, "admin"), "admin": 403},
    ),
    "team create": (
        "post",
        lambda w: "/api/v1/teams/",
        {"name": "green"},
        {**expect(201, "admin"), "admin": 403, "other_team": 403},
    ),
    "team members": (
        "get",
        lambda w: f"/api/v1/teams/{w.red.id}/members/",
        None,
        expect(200, "viewer"),
    ),
    "team member add": (
        "post",
        lambda w: f"/api/v1/teams/{w.red.id}/members/",
        {"username": "other_team", "role": "viewer"},
        expect(201, "admin"),
    ),
    "team member role": (
        "patch",
        lambda w: f"/api/v1/teams/{w.red.id}/members/viewer/",
        {"role": "operator"},
        expect(200, "admin"),
    ),
    "team member remove": (
        "delete",
        lambda w: f"/api/v1/teams/{w.red.id}/members/viewer/",
        None,
        expect(204, "admin"),
    ),
    "job create": (
        "post",
        lambda w: "/api/v1/jobs/",
        {"team": "red", "name": "new", "task_type": "dts.noop", "args": {}},
        # Another team's admin names a team that is not theirs: refused as bad input.
        {**expect(201, "admin"), "other_team": 400},
    ),
    "workflow": (
        "get",
        lambda w: f"/api/v1/workflows/{workflow_of(w).id}/",
        None,
        expect(200, "viewer"),
    ),
    "workflow update": (
        "patch",
        lambda w: f"/api/v1/workflows/{workflow_of(w).id}/",
        {"description": "changed"},
        expect(200, "admin"),
    ),
    "workflow delete": (
        "delete",
        lambda w: f"/api/v1/workflows/{workflow_of(w).id}/",
        None,
        expect(204, "admin"),
    ),
    "workflow trigger": (
        "post",
        lambda w: f"/api/v1/workflows/{workflow_of(w).id}/trigger/",
        None,
        expect(201, "operator"),
    ),
    "workflow create": (
        "post",
        lambda w: "/api/v1/workflows/",
        {"team": "red", "name": "new", "steps": [{"name": "a", "job": "red job"}]},
        {**expect(201, "admin"), "other_team": 400},
    ),
    "workflow run": (
        "get",
        lambda w: f"/api/v1/workflow-runs/{workflow_run_of(w).id}/",
        None,
        expect(200, "viewer"),
    ),
    "workflow run cancel": (
        "post",
        lambda w: f"/api/v1/workflow-runs/{workflow_run_of(w).id}/cancel/",
        None,
        expect(200, "operator"),
    ),
    "workflow run retry": (
        "post",
        lambda w: f"/api/v1/workflow-runs/{workflow_run_of(w, WorkflowRunState.FAILED).id}/retry/",
        None,
        expect(200, "operator"),
    ),
    "webhook": (
        "get",
        lambda w: f"/api/v1/webhooks/{webhook_of(w).id}/",
        None,
        expect(200, "viewer"),
    ),
    "webhook update": (
        "patch",
        lambda w: f"/api/v1/webhooks/{webhook_of(w).id}/",
        {"enabled": False},
        expect(200, "admin"),
    ),
    "webhook delete": (
        "delete",
        lambda w: f"/api/v1/webhooks/{webhook_of(w).id}/",
        None,
        expect(204, "admin"),
    ),
    "webhook create": (
        "post",
        lambda w: "/api/v1/webhooks/",
        {"team": "red", "name": "new", "url": "https://93.184.215.14/", "secret": "y" * 16},
        {**expect(201, "admin"), "other_team": 400},
    ),
    "webhook ping": (
        "post",
        lambda w: f"/api/v1/webhooks/{webhook_of(w).id}/ping/",
        None,
        expect(201, "operator"),
    ),
    "webhook deliveries": (
        "get",
        lambda w: f"/api/v1/webhooks/{webhook_of(w).id}/deliveries/",
        None,
        expect(200, "viewer"),
    ),
    "webhook delivery redeliver": (
        "post",
        lambda w: (
            f"/api/v1/webhooks/{webhook_of(w).id}/deliveries/{failed_delivery_of(w).id}/redeliver/"
        ),
        None,
        expect(200, "operator"),
    ),
    "apply": (
        "post",
        lambda w: "/api/v1/apply/",
        {"documents": [{"team": "red", "name": "new", "task_type": "dts.noop"}]},
        # Another team's admin names a team that is not theirs: refused as bad input.
        {**expect(200, "admin"), "other_team": 400},
    ),
    **{
        f"{name} list": (
            "get",
            lambda w, url=url: url,
            None,
            {**expect(200, "viewer"), "other_team": 200},
        )
        for name, url in [
            ("jobs", "/api/v1/jobs/"),
            ("runs", "/api/v1/runs/"),
            ("run counts", "/api/v1/runs/counts/"),
            ("runs per minute", "/api/v1/runs/per-minute/"),
            ("jobs overview", "/api/v1/jobs/overview/"),
            ("audit", "/api/v1/audit/"),
            ("tokens", "/api/v1/tokens/"),
            ("teams", "/api/v1/teams/"),
            ("task types", "/api/v1/task-types/"),
            ("workflows", "/api/v1/workflows/"),
            ("workflow runs", "/api/v1/workflow-runs/"),
            ("webhooks", "/api/v1/webhooks/"),
            ("schedule timing preview", "/api/v1/schedules/preview/?interval_seconds=60"),
            ("workers", "/api/v1/workers/"),
            ("queues", "/api/v1/queues/"),
            ("log search", "/api/v1/logs/"),
        ]
    },
}


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_every_endpoint_answers_each_actor_as_its_role_allows(world, client_as, endpoint, actor):
    method, url, body, expected = ENDPOINTS[endpoint]

    response = getattr(client_as(actor), method)(url(world), body, format="json")

    assert response.status_code == expected[actor], response.content
    if response.status_code >= 400:
        assert response.json()["error"]["status"] == response.status_code


@pytest.mark.parametrize(
    ("url", "red_key", "blue_key"),
    [
        ("/api/v1/jobs/", "job", "blue_job"),
        ("/api/v1/jobs/overview/", "job", "blue_job"),
        ("/api/v1/runs/", "queued_run", "blue_run"),
    ],
)
@pytest.mark.parametrize("actor", ["viewer", "other_team", "superuser"])
def test_lists_show_only_the_teams_objects(world, client_as, url, red_key, blue_key, actor):
    response = client_as(actor).get(url)

    ids = {str(item["id"]) for item in response.json()["results"]}
    red, blue = str(getattr(world, red_key).id), str(getattr(world, blue_key).id)
    assert (red in ids, blue in ids) == {
        "viewer": (True, False),
        "other_team": (False, True),
        "superuser": (True, True),
    }[actor]


def test_run_counts_count_only_the_teams_runs(world, client_as):
    counts = {
        actor: client_as(actor).get("/api/v1/runs/counts/").json()
        for actor in ("viewer", "other_team", "superuser")
    }

    assert {actor: (c["queued"], c["failed"]) for actor, c in counts.items()} == {
        "viewer": (1, 1),
        "other_team": (1, 0),
        "superuser": (2, 1),
    }
    assert set(counts["viewer"]) == {state.value for state in RunState}


def test_runs_per_minute_count_only_the_teams_runs(world, client_as):
    for run in (world.failed_run, world.blue_run):
        run.finished_at = timezone.now()
        run.state = RunState.FAILED
        run.save()

    failed = {
        actor: sum(client_as(actor).get("/api/v1/runs/per-minute/").json()["counts"]["failed"])
        for actor in ("viewer", "other_team", "superuser")
    }

    assert failed == {"viewer": 1, "other_team": 1, "superuser": 2}


def test_the_jobs_overview_shows_only_the_teams_runs(world, client_as):
    jobs = client_as("superuser").get("/api/v1/jobs/overview/").json()["results"]

    runs = {job["name"]: {run["id"] for run in job["latest_runs"]} for job in jobs}
    assert runs == {
        "red job": {str(world.queued_run.id), str(world.failed_run.id)},
        "blue job": {str(world.blue_run.id)},
    }


def test_the_audit_list_shows_only_the_teams_entries(world, client_as):
    client_as("admin").patch(f"/api/v1/jobs/{world.job.id}/", {"description": "red"}, format="json")
    client_as("other_team").patch(
        f"/api/v1/jobs/{world.blue_job.id}/", {"description": "blue"}, format="json"
    )

    seen = {
        actor: [
            entry["object_repr"]
            for entry in client_as(actor).get("/api/v1/audit/").json()["results"]
        ]
        for actor in ("viewer", "other_team", "superuser")
    }

    assert seen == {
        "viewer": ["red job"],
        "other_team": ["blue job"],
        "superuser": ["blue job", "red job"],
    }
