"""Workflows in the admin: steps inline, checked as one graph, saved through the services."""

import pytest
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.workflows.models import Workflow
from apps.workflows.services import workflow_create, workflow_trigger
from tests.factories import JobFactory, TeamFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def job():
    return JobFactory(team=TeamFactory(name="ops"), name="load", task_type="dts.noop", args={})


def workflow_form(job, steps, **fields):
    form = {
        "team": str(job.team_id),
        "name": "etl",
        "description": "",
        "overlap_policy": "allow",
        "steps-TOTAL_FORMS": str(len(steps)),
        "steps-INITIAL_FORMS": "0",
        "schedules-TOTAL_FORMS": "0",
        "schedules-INITIAL_FORMS": "0",
        **fields,
    }
    for index, (name, depends_on) in enumerate(steps):
        form |= {
            f"steps-{index}-name": name,
            f"steps-{index}-job": str(job.id),
            f"steps-{index}-args": "null",
            f"steps-{index}-depends_on": depends_on,
            f"steps-{index}-condition": "on_success",
        }
    return form


def test_the_admin_creates_a_workflow_with_its_steps_through_the_services(admin_client, job):
    response = admin_client.post(
        reverse("admin:workflows_workflow_add"),
        workflow_form(job, [("load", ""), ("report", "load")]),
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    workflow = Workflow.objects.get()
    assert [(s.name, s.depends_on) for s in workflow.steps.order_by("id")] == [
        ("load", []),
        ("report", ["load"]),
    ]
    assert AuditEntry.objects.filter(object_type="workflow", action="create").exists()


def schedule_form(index, **fields):
    form = {
        "kind": "cron",
        "cron_expression": "",
        "timezone": "UTC",
        "jitter_seconds": "0",
        "misfire_policy": "run_once",
        "catch_up_window_seconds": "3600",
        "catch_up_max_fires": "10",
        "enabled": "on",
        **fields,
    }
    return {f"schedules-{index}-{name}": value for name, value in form.items()}


def test_the_admin_gives_a_workflow_schedules_refusing_one_that_cannot_fire(admin_client, job):
    url = reverse("admin:workflows_workflow_add")
    steps = [("load", "")]
    refused = admin_client.post(
        url,
        workflow_form(
            job,
            steps,
            **{"schedules-TOTAL_FORMS": "1"},
            **schedule_form(0, cron_expression="61 * * * *"),
        ),
    )
    created = admin_client.post(
        url,
        workflow_form(
            job,
            steps,
            overlap_policy="skip",
            **{"schedules-TOTAL_FORMS": "1"},
            **schedule_form(0, cron_expression="0 2 * * *"),
        ),
    )

    assert refused.status_code == 200
    assert (
        "61"
        in refused.context["inline_admin_formsets"][1].formset.forms[0].errors["cron_expression"][0]
    )
    assert created.status_code == 302, created.content.decode()[:3000]
    workflow = Workflow.objects.get()
    assert workflow.overlap_policy == "skip"
    assert [s.describe() for s in workflow.schedules.all()] == ["At 02:00, UTC"]
    assert workflow.schedules.get().next_fire_at is not None


def test_a_cycle_is_shown_on_the_form_and_nothing_is_saved(admin_client, job):
    response = admin_client.post(
        reverse("admin:workflows_workflow_add"),
        workflow_form(job, [("a", "b"), ("b", "a")]),
    )

    assert response.status_code == 200
    assert "cycle: a → b → a" in response.content.decode()
    assert not Workflow.objects.exists()


def test_a_dangling_name_is_shown_under_its_field(admin_client, job):
    response = admin_client.post(
        reverse("admin:workflows_workflow_add"), workflow_form(job, [("a", "nope")])
    )

    assert "No step is named" in response.content.decode()
    assert not Workflow.objects.exists()


def test_a_workflow_run_is_shown_read_only_with_its_steps(admin_client, job):
    workflow = workflow_create(team=job.team, name="etl", steps=[{"name": "a", "job": job}])
    run = workflow_trigger(workflow=workflow)

    page = admin_client.get(reverse("admin:workflows_workflowrun_change", args=[run.id]))

    assert page.status_code == 200
    assert "running" in page.content.decode()
