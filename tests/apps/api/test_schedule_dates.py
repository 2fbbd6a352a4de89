"""Schedule dates past the horizon (docs/scheduling.md), and cron expressions stored before the
rules that refuse them, are a 400 naming the field, never a 500."""

from datetime import UTC, datetime

import pytest
import time_machine

from apps.schedules.services import schedule_create
from tests.apps.schedules.test_horizon import FAR_FUTURE, NOW
from tests.factories import ScheduleFactory


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "field"), FAR_FUTURE)
def test_a_date_past_the_horizon_is_a_400_naming_it(world, client_as, clock, body, field):
    response = client_as("admin").post(
        f"/api/v1/jobs/{world.job.id}/schedules/", body, format="json"
    )

    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == field


@pytest.mark.django_db
def test_an_edit_past_the_horizon_is_a_400_naming_it(world, client_as, clock):
    created = schedule_create(job=world.job, kind="interval", interval_seconds=60)

    response = client_as("admin").patch(
        f"/api/v1/jobs/{world.job.id}/schedules/{created.id}/",
        {"end_at": "9999-12-31T23:59:59Z"},
        format="json",
    )

    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == "end_at"


@pytest.mark.django_db
def test_a_schedule_near_the_horizon_previews_up_to_it(world, client_as, clock):
    created = schedule_create(
        job=world.job,
        kind="interval",
        interval_seconds=366 * 86400,
        start_at=datetime(2199, 12, 31, tzinfo=UTC),
    )

    response = client_as("admin").get(
        f"/api/v1/jobs/{world.job.id}/schedules/{created.id}/preview/?count=1000"
    )

    assert response.status_code == 200, response.content
    assert response.json()["fire_times"] == ["2199-12-31T00:00:00Z"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "tail"),
    [("post", "resume/"), ("get", "preview/?count=3")],
    ids=["resume", "preview"],
)
def test_a_stored_cron_the_rules_refuse_is_a_400_naming_it(world, client_as, clock, method, tail):
    # Stored before the rules (croniter took it), then paused.
    stored = ScheduleFactory(
        job=world.job,
        kind="cron",
        interval_seconds=None,
        cron_expression="0 23-1 * * *",
        paused=True,
        next_scheduled_for=NOW,
        next_fire_at=NOW,
    )

    response = getattr(client_as("admin"), method)(
        f"/api/v1/jobs/{world.job.id}/schedules/{stored.id}/{tail}"
    )

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["field"] == "cron_expression"
    assert "hour field '23-1': a reversed range" in error["message"]
    stored.refresh_from_db()
    assert stored.paused
