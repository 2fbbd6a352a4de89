import pytest

from apps.jobs.models import Job
from apps.workflows.models import Workflow
from standalone.demo import DEMO_JOBS, DEMO_TEAM, DEMO_WORKFLOW, demo_load
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def test_demo_jobs_and_workflow_are_loaded_once_for_the_demo_team():
    demo_load(username="admin", password="admin")
    demo_load(username="admin", password="admin")

    names = Job.objects.filter(team__name=DEMO_TEAM).values_list("name", flat=True)
    assert sorted(names) == sorted(job["name"] for job in DEMO_JOBS)
    workflow = Workflow.objects.get(team__name=DEMO_TEAM, name=DEMO_WORKFLOW)
    assert workflow.steps.count() == 5
    assert [s.describe() for s in workflow.schedules.all()] == ["Every hour, UTC"]


def test_another_teams_job_of_a_demo_name_does_not_keep_the_demo_job_out():
    JobFactory(name=DEMO_JOBS[0]["name"])

    demo_load(username="admin", password="admin")

    assert Job.objects.filter(team__name=DEMO_TEAM, name=DEMO_JOBS[0]["name"]).exists()
