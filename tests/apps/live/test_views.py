import pytest
from django.test import Client

from apps.accounts.models import Role
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
