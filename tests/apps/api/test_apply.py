"""/api/v1/apply/: a set of declared jobs with their schedules, applied in one transaction."""

import jsonschema
import pytest
from rest_framework.test import APIClient

from apps.audit.models import AuditEntry
from apps.jobs.models import Job
from apps.schedules.models import Schedule
from apps.workflows.models import Workflow
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

NIGHTLY = {
    "team": "red",
    "name": "nightly",
    "task_type": "dts.echo",
    "args": {"greeting": "hi"},
    "tags": ["etl"],
    "schedules": [
        {"cron_expression": "0 9 * * 1-5", "timezone": "Europe/Paris"},
        {"interval_seconds": 600, "jitter_seconds": 30},
    ],
}


def apply(client, *documents, expect=200, **options):
    response = client.post("/api/v1/apply/", {"documents": list(documents), **options}, "json")
    assert response.status_code == expect, response.content
    return response.json()


def actions(result):
    return [(c["kind"], c["name"], c["action"]) for c in result["changes"]]


def test_a_declared_job_is_created_with_its_schedules_then_left_unchanged(world, client_as):
    admin = client_as("admin")

    first = apply(admin, NIGHTLY)
    second = apply(admin, NIGHTLY)

    job = Job.objects.get(team=world.red, name="nightly")
    assert actions(first) == [
        ("job", "nightly", "created"),
        ("schedule", "nightly", "created"),
        ("schedule", "nightly", "created"),
    ]
    assert first["changed"]
    assert not second["changed"]
    assert {change["action"] for change in second["changes"]} == {"unchanged"}
    assert [s.describe() for s in job.schedules.order_by("id")] == [
        "At 09:00, Monday through Friday, Europe/Paris",
        "Every 10 minutes",
    ]
    assert sorted(job.tags.values_list("name", flat=True)) == ["etl"]
    assert AuditEntry.objects.filter(actor=world.users["admin"]).count() == 3


def test_a_changed_cron_expression_changes_that_schedule_keeping_its_id(world, client_as):
    admin = client_as("admin")
    apply(admin, NIGHTLY)
    ids = list(
        Schedule.objects.filter(job__name="nightly").order_by("id").values_list("id", flat=True)
    )
    changed = {**NIGHTLY, "queue": "default", "description": "the nightly load"}
    changed["schedules"] = [
        {"interval_seconds": 600, "jitter_seconds": 30},
        {"cron_expression": "30 9 * * 1-5", "timezone": "Europe/Paris"},
    ]

    result = apply(admin, changed)

    by_id = {c["id"]: c for c in result["changes"] if c["kind"] == "schedule"}
    assert sorted(by_id) == ids
    assert by_id[ids[0]]["action"] == "configured"
    assert by_id[ids[0]]["after"]["cron_expression"] == "30 9 * * 1-5"
    assert by_id[ids[1]]["action"] == "unchanged"
    job_change = result["changes"][0]
    assert job_change["action"] == "configured"
    assert (job_change["before"]["description"], job_change["after"]["description"]) == (
        "",
        "the nightly load",
    )


def test_fields_left_out_take_their_defaults_except_enabled(world, client_as):
    admin = client_as("admin")
    apply(admin, {**NIGHTLY, "priority": 8, "max_attempts": 3})
    Job.objects.filter(name="nightly").update(enabled=False)  # paused by an operator

    apply(admin, NIGHTLY)

    job = Job.objects.get(name="nightly")
    assert (job.priority, job.max_attempts, job.enabled) == (5, 1, False)
    apply(admin, {**NIGHTLY, "enabled": True})
    job.refresh_from_db()
    assert job.enabled


def test_schedules_left_out_are_kept_and_an_empty_list_deletes_them(world, client_as):
    admin = client_as("admin")
    apply(admin, NIGHTLY)
    without = {key: value for key, value in NIGHTLY.items() if key != "schedules"}

    kept = apply(admin, without)
    emptied = apply(admin, {**without, "schedules": []})

    assert actions(kept) == [("job", "nightly", "unchanged")]
    assert [c["action"] for c in emptied["changes"]] == ["unchanged", "deleted", "deleted"]
    assert not Schedule.objects.filter(job__name="nightly").exists()


def test_prune_deletes_the_undeclared_jobs_of_the_named_teams_only(world, client_as):
    superuser = client_as("superuser")

    kept = apply(superuser, NIGHTLY)
    pruned = apply(superuser, NIGHTLY, prune=True)

    assert ("job", "red job", "deleted") not in actions(kept)
    assert ("job", "red job", "deleted") in actions(pruned)
    assert not Job.objects.filter(id=world.job.id).exists()
    assert Job.objects.filter(id=world.blue_job.id).exists()  # team blue is not named


def test_a_dry_run_says_what_would_change_and_changes_nothing(world, client_as):
    admin = client_as("admin")
    audited = AuditEntry.objects.count()

    result = apply(admin, NIGHTLY, prune=True, dry_run=True)

    assert result["dry_run"]
    assert result["changed"]
    assert actions(result)[0] == ("job", "nightly", "created")
    assert ("job", "red job", "deleted") in actions(result)
    assert {c["id"] for c in result["changes"] if c["action"] == "created"} == {None}
    assert not Job.objects.filter(name="nightly").exists()
    assert Job.objects.filter(id=world.job.id).exists()
    assert AuditEntry.objects.count() == audited


def test_one_bad_field_anywhere_leaves_nothing_applied_and_every_fault_is_named(world, client_as):
    admin = client_as("admin")
    good = {"team": "red", "name": "fine", "task_type": "dts.noop"}
    bad_cron = {**NIGHTLY, "schedules": [{"cron_expression": "61 * * * *"}]}
    bad_job = {"team": "red", "name": "worse", "task_type": "dts.noop", "cron": "x"}
    two_kinds = {
        "team": "red",
        "name": "twice",
        "task_type": "dts.noop",
        "schedules": [{"interval_seconds": 60, "once_at": "2030-01-01T00:00:00Z"}],
    }

    error = apply(admin, good, bad_cron, bad_job, two_kinds, prune=True, expect=400)["error"]

    assert list(error["errors"]) == [
        "documents[1].schedules[0].cron_expression",
        "documents[2].cron",
        "documents[3].schedules[0].kind",
    ]
    assert error["errors"]["documents[2].cron"] == ["Unknown field."]
    assert not Job.objects.filter(name__in=["fine", "nightly", "worse", "twice"]).exists()
    assert Job.objects.filter(id=world.job.id).exists()  # not pruned either


def test_a_refusal_by_the_service_names_its_document_and_rolls_back_the_others(world, client_as):
    admin = client_as("admin")
    good = {"team": "red", "name": "fine", "task_type": "dts.noop"}
    unknown_type = {"team": "red", "name": "worse", "task_type": "no.such.type"}
    twice = {"team": "red", "name": "fine", "task_type": "dts.noop", "priority": 1}
    past = {**good, "name": "once", "schedules": [{"once_at": "2001-01-01T00:00:00Z"}]}

    error = apply(admin, good, unknown_type, twice, past, expect=400)["error"]

    assert set(error["errors"]) == {
        "documents[1].task_type",
        "documents[2].name",
        "documents[3].schedules[0].once_at",
    }
    assert error["errors"]["documents[2].name"] == ["documents[0] declares this job too."]
    assert not Job.objects.filter(name__in=["fine", "once"]).exists()


def test_teams_not_the_users_are_refused_by_name_and_other_roles_by_403(world, client_as):
    body = {**NIGHTLY, "team": "blue"}

    error = apply(client_as("admin"), NIGHTLY, body, expect=400)["error"]
    apply(client_as("operator"), NIGHTLY, expect=403)

    assert error["errors"] == {"documents[1].team": ["No team of yours has this name."]}
    assert not Job.objects.filter(name="nightly").exists()


def test_a_schedule_past_the_teams_cap_is_refused_but_one_replaced_is_not(world, client_as):
    world.red.max_active_schedules = 2
    world.red.save()
    admin = client_as("admin")
    world.schedule.delete()
    apply(admin, NIGHTLY)
    replaced = {**NIGHTLY, "schedules": [{"interval_seconds": 60}, {"interval_seconds": 120}]}
    three = {**NIGHTLY, "schedules": [*replaced["schedules"], {"interval_seconds": 180}]}

    apply(admin, replaced)
    error = apply(admin, three, expect=400)["error"]

    assert error["field"] == "documents[0].schedules[2].enabled"
    assert sorted(
        Schedule.objects.filter(job__name="nightly").values_list("interval_seconds", flat=True)
    ) == [60, 120]


def test_the_manifest_schema_is_a_json_schema_the_documents_meet(world, client_as):
    response = APIClient().get("/api/schema/manifest/")
    schema = response.json()
    openapi = APIClient().get("/api/schema/?format=json").json()

    assert response.status_code == 200
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert not list(validator.iter_errors(NIGHTLY))
    assert list(validator.iter_errors({**NIGHTLY, "cron": "* * * * *"}))
    assert list(validator.iter_errors({**NIGHTLY, "schedules": [{"jitter_seconds": "x"}]}))
    assert list(validator.iter_errors({"team": "red", "name": "x"}))  # task_type is required
    for name in ("JobDocumentRequest", "WorkflowDocumentRequest"):
        declared = openapi["components"]["schemas"][name]["properties"]
        assert declared.keys() == schema["$defs"][name]["properties"].keys()


def test_a_job_of_the_same_name_in_another_team_is_another_job(world, client_as):
    JobFactory(team=world.blue, name="nightly", task_type="dts.noop", args={})

    result = apply(client_as("superuser"), NIGHTLY)

    assert actions(result)[0] == ("job", "nightly", "created")
    assert Job.objects.filter(name="nightly").count() == 2


PIPELINE = {
    "kind": "workflow",
    "team": "red",
    "name": "pipeline",
    "steps": [
        {"name": "load", "job": "nightly"},
        {"name": "report", "job": "nightly", "depends_on": ["load"]},
    ],
}


def test_a_workflow_is_applied_with_the_jobs_it_runs_then_changed_then_pruned(world, client_as):
    admin = client_as("admin")

    created = apply(admin, PIPELINE, NIGHTLY)  # its job is declared after it: jobs come first
    again = apply(admin, NIGHTLY, PIPELINE)
    changed_steps = [
        *PIPELINE["steps"],
        {"name": "alert", "job": "nightly", "depends_on": ["load"], "condition": "on_failure"},
    ]
    changed = apply(admin, NIGHTLY, {**PIPELINE, "steps": changed_steps})
    pruned = apply(admin, {**NIGHTLY, "name": "other"}, prune=True)

    assert ("workflow", "pipeline", "created") in actions(created)
    assert not again["changed"]
    workflow_change = next(c for c in changed["changes"] if c["kind"] == "workflow")
    assert workflow_change["action"] == "configured"
    assert [step["name"] for step in workflow_change["after"]["steps"]] == [
        "load",
        "report",
        "alert",
    ]
    assert actions(pruned)[-3:] == [
        ("workflow", "pipeline", "deleted"),
        ("job", "nightly", "deleted"),
        ("job", "red job", "deleted"),
    ]
    assert not Workflow.objects.exists()


def test_a_workflows_schedules_are_the_declared_ones_kept_when_left_out(world, client_as):
    admin = client_as("admin")
    hourly = {"cron_expression": "0 * * * *"}
    scheduled = {**PIPELINE, "overlap_policy": "skip", "schedules": [hourly]}

    created = apply(admin, NIGHTLY, scheduled)
    again = apply(admin, NIGHTLY, scheduled)
    left_out = apply(admin, NIGHTLY, {**PIPELINE, "overlap_policy": "skip"})
    retimed = apply(admin, NIGHTLY, {**scheduled, "schedules": [{"interval_seconds": 60}]})
    refused = apply(
        admin, NIGHTLY, {**scheduled, "schedules": [{"cron_expression": "x"}]}, expect=400
    )

    workflow = Workflow.objects.get()
    first = next(c for c in created["changes"] if c["kind"] == "workflow")["after"]
    assert [(s["kind"], s["cron_expression"]) for s in first["schedules"]] == [
        ("cron", "0 * * * *")
    ]
    assert workflow.overlap_policy == "skip"
    assert not again["changed"]
    assert not left_out["changed"]
    assert retimed["changed"]
    assert list(workflow.schedules.values_list("kind", "interval_seconds")) == [("interval", 60)]
    assert list(refused["error"]["errors"]) == ["documents[1].schedules[0].cron_expression"]


def test_a_bad_workflow_document_is_refused_naming_its_field(world, client_as):
    unknown_job = {**PIPELINE, "steps": [{"name": "load", "job": "nope"}]}
    cycle = {
        **PIPELINE,
        "name": "loop",
        "steps": [
            {"name": "a", "job": "red job", "depends_on": ["b"]},
            {"name": "b", "job": "red job", "depends_on": ["a"]},
        ],
    }
    no_kind = {key: value for key, value in PIPELINE.items() if key != "kind"}

    error = apply(client_as("admin"), unknown_job, cycle, no_kind, expect=400)["error"]

    assert list(error["errors"]) == [
        "documents[0].steps[0].job",
        "documents[1].steps",
        "documents[2].steps",
        "documents[2].task_type",
    ]
    assert "a → b → a" in error["errors"]["documents[1].steps"][0]
    assert not Workflow.objects.exists()


@pytest.mark.parametrize("kind", [{}, [], 3, "cronjob", None])
def test_a_document_of_no_known_kind_is_refused_naming_its_kind(world, client_as, kind):
    document = {"team": "red", "name": "x", "task_type": "dts.noop", "kind": kind}

    error = apply(client_as("admin"), document, expect=400)["error"]

    assert "documents[0].kind" in error["errors"]
