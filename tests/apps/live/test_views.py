import re

import pytest
from django.test import Client

from apps.accounts.models import Role
from apps.live.views import LATEST_WORKFLOW_RUNS
from apps.workflows.services import workflow_create, workflow_trigger
from tests.factories import JobFactory, MembershipFactory, RunFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def red():
    team = TeamFactory(name="red")
    job = JobFactory(team=team, name="red job", task_type="dts.noop", args={})
    return team, job, RunFactory(job=job)


def signed_in(team, role: str) -> Client:
    client = Client()
    client.force_login(MembershipFactory(team=team, user=UserFactory(), role=role).user)
    return client


def test_the_pages_ask_for_a_sign_in_that_team_members_pass(red):
    team, _, run = red
    member = MembershipFactory(team=team, user=UserFactory(username="ann"), role=Role.VIEWER)

    for url in ["/live/", "/live/jobs/", f"/live/runs/{run.id}/", "/"]:
        response = Client().get(url, follow=True)

        assert response.redirect_chain[-1][0].startswith("/live/login/?next="), url
    signed = Client().post(
        "/live/login/?next=/live/", {"username": "ann", "password": "password", "next": "/live/"}
    )
    assert signed["Location"] == "/live/"
    assert not member.user.is_staff


def test_the_dashboard_lists_only_the_users_teams_jobs_and_offers_runs_to_operators(red):
    team, job, _ = red
    JobFactory(team=TeamFactory(name="blue"), name="blue job")

    viewer = signed_in(team, Role.VIEWER).get(f"/live/?job={job.id}")
    operator = signed_in(team, Role.OPERATOR).get(f"/live/?job={job.id}")

    assert viewer.status_code == 200
    assert "red job" in viewer.content.decode()
    assert "blue job" not in viewer.content.decode()
    assert 'id="trigger"' not in viewer.content.decode()
    assert 'id="trigger"' in operator.content.decode()


def test_a_run_page_is_the_teams_only_and_its_buttons_the_operators(red):
    team, _, run = red
    other = RunFactory(job=JobFactory(team=TeamFactory(name="blue")))

    viewer = signed_in(team, Role.VIEWER)
    operator = signed_in(team, Role.OPERATOR).get(f"/live/runs/{run.id}/")

    assert viewer.get(f"/live/runs/{other.id}/").status_code == 404
    assert 'id="cancel"' not in viewer.get(f"/live/runs/{run.id}/").content.decode()
    assert 'id="cancel"' in operator.content.decode()


def test_the_admin_links_to_the_live_pages(admin_client):
    assert 'href="/live/"' in admin_client.get("/admin/").content.decode()


def test_the_jobs_page_is_linked_from_the_nav_and_loads_its_rows_from_the_api(red):
    team, _, _ = red

    response = signed_in(team, Role.VIEWER).get("/live/jobs/")

    assert response.status_code == 200
    page = response.content.decode()
    assert '<a href="/live/jobs/">Jobs</a>' in page
    assert "live/jobs.js" in page
    assert 'id="jobs-body"' in page


def test_the_dashboard_carries_the_vendored_chart_library(red):
    team, _, _ = red

    page = signed_in(team, Role.VIEWER).get("/live/").content.decode()

    assert "live/vendor/uPlot.iife.min.js" in page
    assert "live/vendor/uPlot.min.css" in page
    assert 'id="per-minute-chart"' in page


def test_the_workflows_page_shows_the_teams_workflows_their_schedules_and_latest_runs(red):
    team, job, _ = red
    steps = [{"name": "a", "job": job}]
    workflow = workflow_create(
        team=team,
        name="etl",
        steps=steps,
        schedules=[{"kind": "cron", "cron_expression": "0 2 * * *"}],
    )
    runs = [workflow_trigger(workflow=workflow) for _ in range(LATEST_WORKFLOW_RUNS + 2)]
    blue = TeamFactory(name="blue")
    workflow_create(team=blue, name="blue etl", steps=[{"name": "a", "job": JobFactory(team=blue)}])
    step_run = runs[-1].steps.get().run

    page = signed_in(team, Role.VIEWER).get("/live/workflows/").content.decode()
    run_page = signed_in(team, Role.VIEWER).get(f"/live/runs/{step_run.id}/").content.decode()

    assert '<a href="/live/workflows/">Workflows</a>' in page
    assert "etl" in page
    assert "blue etl" not in page
    assert "At 02:00, UTC" in page
    shown = re.findall(r'href="/live/workflow-runs/([0-9a-f-]+)/"', page)
    assert shown == [str(run.id) for run in reversed(runs)][:LATEST_WORKFLOW_RUNS]
    assert f'href="/live/workflow-runs/{runs[-1].id}/"' in run_page
