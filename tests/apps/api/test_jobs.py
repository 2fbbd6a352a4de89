import json

import pytest
from rest_framework.renderers import JSONRenderer

from apps.api.jobs import JobSerializer
from apps.audit.models import AuditEntry
from apps.jobs.models import Job
from apps.runs.models import Run

pytestmark = pytest.mark.django_db

DEFINITION = {"team": "red", "name": "nightly", "task_type": "dts.sleep", "args": {"seconds": 1}}


def test_an_admin_creates_a_job_with_tags_and_the_audit_log_says_who(world, client_as):
    response = client_as("admin").post(
        "/api/v1/jobs/", {**DEFINITION, "tags": ["nightly", "billing"]}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["team"], body["tags"], body["args"]) == (
        "red",
        ["billing", "nightly"],
        {"seconds": 1},
    )
    entry = AuditEntry.objects.get(object_type="job", object_id=str(body["id"]))
    assert (entry.actor_name, entry.action, entry.team_id) == ("admin", "create", world.red.id)
    assert entry.changes["tags"] == {"old": None, "new": ["billing", "nightly"]}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"task_type": "billing.unknown"}, "task_type"),
        ({"args": {"seconds": "soon"}}, "args"),
        ({"args": [1, 2]}, "args"),
        ({"priority": 10}, "priority"),
        ({"queue": "nowhere"}, "queue"),
        ({"tags": ["Not A Tag"]}, "tags"),
        ({"name": ""}, "name"),
        ({"soft_timeout_seconds": 60, "hard_timeout_seconds": 30}, None),
        ({"team": "blue"}, "team"),
    ],
)
def test_a_bad_definition_is_refused_naming_its_field_and_nothing_is_written(
    world, client_as, change, field
):
    response = client_as("admin").post("/api/v1/jobs/", {**DEFINITION, **change}, format="json")

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (error["code"], field)
    assert error["message"]
    assert not Job.objects.filter(name="nightly").exists()
    assert not AuditEntry.objects.exists()


def test_a_name_taken_is_refused(world, client_as):
    response = client_as("admin").post(
        "/api/v1/jobs/", {**DEFINITION, "name": "red job"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "name"


def test_jobs_are_filtered_by_team_tag_task_type_enabled_and_name(world, client_as):
    admin = client_as("superuser")
    admin.post("/api/v1/jobs/", {**DEFINITION, "tags": ["nightly"]}, format="json")
    admin.post(
        "/api/v1/jobs/",
        {**DEFINITION, "name": "paused one", "enabled": False, "task_type": "dts.noop", "args": {}},
        format="json",
    )

    def names(query: str) -> list[str]:
        return [job["name"] for job in admin.get(f"/api/v1/jobs/?{query}").json()["results"]]

    assert names("team=blue") == ["blue job"]
    assert names("tag=nightly") == ["nightly"]
    assert names("task_type=dts.sleep") == ["nightly"]
    assert names("enabled=false") == ["paused one"]
    assert names("search=NIGHT") == ["nightly"]
    assert names("team=red&enabled=true") == ["nightly", "red job"]


def test_a_job_reads_as_the_job_serializer_writes_it_in_the_list_and_alone(world, client_as):
    admin = client_as("admin")
    created = admin.post(
        "/api/v1/jobs/",
        {**DEFINITION, "tags": ["zeta", "alpha"], "description": "d", "priority": 3},
        format="json",
    ).json()
    untagged = JobSerializer(world.job).data

    listed = admin.get("/api/v1/jobs/").json()["results"]
    alone = admin.get(f"/api/v1/jobs/{created['id']}/").json()

    assert created["tags"] == ["alpha", "zeta"]
    assert alone == created
    assert next(job for job in listed if job["id"] == created["id"]) == created
    assert next(job for job in listed if job["id"] == world.job.id) == rendered(untagged)


def rendered(data):
    return json.loads(JSONRenderer().render(data))


def test_an_update_records_the_field_diff_and_a_pause_and_resume(world, client_as):
    operator, admin = client_as("operator"), client_as("admin")
    admin.patch(f"/api/v1/jobs/{world.job.id}/", {"priority": 7, "tags": ["x"]}, format="json")
    operator.post(f"/api/v1/jobs/{world.job.id}/pause/")
    operator.post(f"/api/v1/jobs/{world.job.id}/resume/")

    entries = list(AuditEntry.objects.order_by("id").values_list("actor_name", "action", "changes"))
    assert entries == [
        ("admin", "update", {"priority": {"old": 5, "new": 7}, "tags": {"old": [], "new": ["x"]}}),
        ("operator", "pause", {"enabled": {"old": True, "new": False}}),
        ("operator", "resume", {"enabled": {"old": False, "new": True}}),
    ]


def test_trigger_with_argument_overrides_validates_them(world, client_as):
    job = Job.objects.create(
        team=world.red, name="sleeper", task_type="dts.sleep", args={"seconds": 1}
    )
    operator = client_as("operator")

    refused = operator.post(
        f"/api/v1/jobs/{job.id}/trigger/", {"args": {"seconds": -1}}, format="json"
    )
    accepted = operator.post(
        f"/api/v1/jobs/{job.id}/trigger/", {"args": {"seconds": 2}}, format="json"
    )

    assert refused.status_code == 400
    assert refused.json()["error"]["field"] == "args"
    assert accepted.status_code == 201
    run = Run.objects.get(id=accepted.json()["id"])
    assert (run.args, run.trigger, run.state) == ({"seconds": 2}, "api", "queued")
    entry = AuditEntry.objects.get(action="trigger")
    assert (entry.actor_name, entry.object_id) == ("operator", str(run.id))


@pytest.mark.parametrize("args", [[1, 2], "seconds=2", 2])
def test_arguments_that_are_no_json_object_are_refused_on_create_and_trigger(
    world, client_as, args
):
    job = Job.objects.create(
        team=world.red, name="sleeper", task_type="dts.sleep", args={"seconds": 1}
    )
    admin = client_as("admin")

    created = admin.post("/api/v1/jobs/", {**DEFINITION, "args": args}, format="json")
    triggered = admin.post(f"/api/v1/jobs/{job.id}/trigger/", {"args": args}, format="json")

    for response in (created, triggered):
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        assert (error["field"], error["message"]) == ("args", "args: Arguments are a JSON object.")
    assert not Run.objects.filter(job=job).exists()
