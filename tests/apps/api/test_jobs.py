import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from apps.api.jobs import JobSerializer
from apps.audit.models import AuditEntry
from apps.jobs.models import Job
from apps.runs.models import Run
from apps.runs.states import RunState
from apps.schedules.models import Schedule
from tests.factories import JobFactory, RunFactory

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


def test_jobs_say_their_health_last_success_and_next_fire_and_are_filtered_by_health(
    world, client_as
):
    now = timezone.now()
    # "red job": every minute since an hour ago, and none of its fires started (world's runs are
    # manual ones): missed. Its failed run would make it failing; missed comes first.
    Schedule.objects.filter(id=world.schedule.id).update(
        updated_at=now - timedelta(hours=1), next_fire_at=now + timedelta(seconds=30)
    )
    failing = JobFactory(team=world.red, name="failing", task_type="dts.noop", args={})
    for _ in range(3):
        RunFactory(job=failing, state=RunState.FAILED, finished_at=now)
    JobFactory(team=world.red, name="paused", task_type="dts.noop", args={}, enabled=False)
    fine = JobFactory(team=world.red, name="fine", task_type="dts.noop", args={})
    RunFactory(job=fine, state=RunState.FAILED, finished_at=now - timedelta(minutes=2))
    RunFactory(job=fine, state=RunState.SUCCEEDED, finished_at=now - timedelta(minutes=1))
    viewer = client_as("viewer")

    def names(health: str) -> list[str]:
        response = viewer.get(f"/api/v1/jobs/?health={health}")
        assert response.status_code == 200, response.content
        return [job["name"] for job in response.json()["results"]]

    assert names("missed") == ["red job"]
    assert names("failing") == ["failing"]
    assert names("paused") == ["paused"]
    assert names("ok") == ["fine"]
    assert names("late") == []
    listed = {job["name"]: job for job in viewer.get("/api/v1/jobs/").json()["results"]}
    alone = viewer.get(f"/api/v1/jobs/{fine.id}/").json()
    assert listed["fine"] == alone
    assert alone["health"] == "ok"
    assert alone["last_success_at"] == rendered(now - timedelta(minutes=1))
    assert alone["next_fire_at"] is None
    assert listed["red job"]["next_fire_at"] == rendered(now + timedelta(seconds=30))
    assert listed["paused"]["last_success_at"] is None


@pytest.mark.parametrize("value", ["sleepy", "", "OK"])
def test_an_unknown_health_is_refused_naming_the_parameter(world, client_as, value):
    response = client_as("viewer").get(f"/api/v1/jobs/?health={value}")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "health"


def test_the_schema_documents_the_health_of_jobs_and_its_filter(world, client_as):
    schema = client_as("anonymous").get("/api/schema/?format=json").json()

    (parameter,) = [
        parameter
        for parameter in schema["paths"]["/api/v1/jobs/"]["get"]["parameters"]
        if parameter["name"] == "health"
    ]
    health_values = ["ok", "late", "missed", "failing", "paused"]
    assert resolved(schema, parameter["schema"])["enum"] == health_values
    job = schema["components"]["schemas"]["Job"]["properties"]
    assert resolved(schema, job["health"])["enum"] == health_values
    assert job["last_success_at"]["nullable"] is True
    assert job["next_fire_at"]["format"] == "date-time"


def resolved(schema, node):
    while "$ref" in node or "allOf" in node:
        reference = node["$ref"] if "$ref" in node else node["allOf"][0]["$ref"]
        node = schema["components"]["schemas"][reference.rsplit("/", 1)[1]]
    return node


def test_the_overview_lists_jobs_with_their_health_and_latest_runs(world, client_as):
    runs = [RunFactory(job=world.job, state=RunState.SUCCEEDED) for _ in range(3)]

    overview = client_as("viewer").get("/api/v1/jobs/overview/?runs=2").json()
    listed = client_as("viewer").get("/api/v1/jobs/").json()

    assert overview["count"] == listed["count"] == 1
    job = overview["results"][0]
    assert {
        key: value for key, value in job.items() if key not in ("latest_runs", "schedules")
    } == listed["results"][0]
    assert job["schedules"] == [
        {"id": world.schedule.id, "description": "Every minute", "active": True}
    ]
    assert job["health"] == "ok"
    assert [(run["id"], run["state"]) for run in job["latest_runs"]] == [
        (str(runs[2].id), "succeeded"),
        (str(runs[1].id), "succeeded"),
    ]


def test_the_overview_reads_a_page_of_jobs_in_a_bounded_number_of_queries(
    world, client_as, django_assert_max_num_queries
):
    for index in range(30):
        job = JobFactory(team=world.red, name=f"job {index:02}", task_type="dts.noop", args={})
        for _ in range(3):
            RunFactory(job=job)
    client = client_as("viewer")

    with django_assert_max_num_queries(12):
        page = client.get("/api/v1/jobs/overview/?limit=25").json()

    assert len(page["results"]) == 25
    assert all(len(job["latest_runs"]) == 3 for job in page["results"][1:])


@pytest.mark.parametrize(
    ("query", "field"),
    [("runs=0", "runs"), ("runs=21", "runs"), ("health=sleepy", "health"), ("limit=0", "limit")],
)
def test_a_bad_overview_parameter_is_refused_naming_it(world, client_as, query, field):
    response = client_as("viewer").get(f"/api/v1/jobs/overview/?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
