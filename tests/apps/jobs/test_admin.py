import json

import pytest
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.jobs.models import Job
from apps.runs.models import Run
from tests.factories import JobFactory, TeamFactory

pytestmark = pytest.mark.django_db


def job_form(**fields):
    return {
        "name": "from the admin",
        "team": str(TeamFactory(name="admins").id),
        "tags": "nightly, billing",
        "description": "",
        "task_type": "dts.sleep",
        "args": json.dumps({"seconds": 1}),
        "queue": "default",
        "soft_timeout_seconds": "",
        "hard_timeout_seconds": "",
        "enabled": "on",
        "overlap_policy": "allow",
        "priority": "5",
        "max_attempts": "1",
        "retry_backoff_seconds": "10",
        "retry_backoff_max_seconds": "3600",
        "retry_jitter": "on",
        "schedules-TOTAL_FORMS": "0",
        "schedules-INITIAL_FORMS": "0",
        **fields,
    }


def test_admin_creates_a_job_through_the_form(admin_client):
    response = admin_client.post(reverse("admin:jobs_job_add"), job_form())

    assert response.status_code == 302
    job = Job.objects.get(name="from the admin")
    assert (job.args, job.team.name) == ({"seconds": 1}, "admins")
    assert list(job.tags.values_list("name", flat=True)) == ["billing", "nightly"]
    entry = AuditEntry.objects.get()
    assert (entry.actor_name, entry.action) == ("admin", "create")


def test_admin_form_names_the_field_and_reason_for_args_breaking_the_schema(admin_client):
    response = admin_client.post(
        reverse("admin:jobs_job_add"), job_form(args='{"seconds": "soon"}')
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "$.seconds: 'soon' is not of type 'number'" in errors["args"][0]
    assert Job.objects.count() == 0


def test_admin_form_refuses_args_that_are_not_json(admin_client):
    response = admin_client.post(reverse("admin:jobs_job_add"), job_form(args="{not json"))

    assert "args" in response.context["adminform"].form.errors
    assert Job.objects.count() == 0


def test_admin_form_offers_only_registered_task_types(admin_client):
    response = admin_client.post(reverse("admin:jobs_job_add"), job_form(task_type="os.system"))

    assert "task_type" in response.context["adminform"].form.errors
    assert Job.objects.count() == 0


def test_admin_shows_the_argument_schemas(admin_client):
    response = admin_client.get(reverse("admin:jobs_job_add"))

    assert b"dts.sleep" in response.content
    assert b"&quot;seconds&quot;" in response.content


def test_run_now_action_triggers_a_run_per_selected_job(admin_client):
    jobs = JobFactory.create_batch(2, task_type="dts.noop", args={})

    response = admin_client.post(
        reverse("admin:jobs_job_changelist"),
        {"action": "run_now", "_selected_action": [job.id for job in jobs]},
    )

    assert response.status_code == 302
    assert sorted(Run.objects.values_list("job_id", flat=True)) == sorted(job.id for job in jobs)


def test_run_now_button_leads_to_the_new_runs_live_page(admin_client):
    job = JobFactory(task_type="dts.noop", args={})

    response = admin_client.post(reverse("admin:jobs_job_run_now", args=[job.id]))

    run = Run.objects.get(job=job)
    assert response["Location"] == f"/live/runs/{run.id}/"


def test_run_now_of_a_job_with_an_unregistered_task_type_says_why(admin_client):
    job = JobFactory(task_type="billing.gone")

    response = admin_client.post(reverse("admin:jobs_job_run_now", args=[job.id]), follow=True)

    assert "not a registered task type" in response.content.decode()
    assert Run.objects.count() == 0


def test_runs_are_read_only_in_the_admin(admin_client):
    job = JobFactory()
    run = Run.objects.create(job=job, trigger="manual", task_type=job.task_type, args=job.args)

    page = admin_client.get(reverse("admin:runs_run_change", args=[run.id]))
    add = admin_client.get(reverse("admin:runs_run_add"))

    assert page.status_code == 200
    assert b"Save" not in page.content
    assert add.status_code == 403
