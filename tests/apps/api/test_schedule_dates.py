"""Schedule dates past the horizon (docs/scheduling.md) are a 400 naming the field, never a 500."""

from datetime import UTC, datetime

import pytest
import time_machine

from apps.schedules.services import schedule_create
from tests.apps.schedules.test_horizon import FAR_FUTURE, NOW


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
