from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from apps.accounts.models import Team
from apps.audit.models import AuditEntry
from apps.schedules.models import Schedule, SkippedFire
from tests.factories import ScheduleFactory

pytestmark = pytest.mark.django_db


def url(world, tail: str = "") -> str:
    return f"/api/v1/jobs/{world.job.id}/schedules/{tail}"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "cron", "cron_expression": "61 * * * *"}, "cron_expression"),
        ({"kind": "cron", "cron_expression": "0 3 * * *", "timezone": "Mars/Olympus"}, "timezone"),
        (
            {"kind": "cron", "cron_expression": "0 3 * * *", "interval_seconds": 60},
            "interval_seconds",
        ),
        ({"kind": "interval"}, "interval_seconds"),
        ({"kind": "interval", "interval_seconds": 0}, "interval_seconds"),
        ({"kind": "once", "once_at": "2001-01-01T00:00:00Z"}, "once_at"),
        ({"kind": "weekly"}, "kind"),
        ({"kind": "cron", "cron_expression": "0 0 30 2 *"}, "cron_expression"),
    ],
)
def test_a_bad_schedule_is_refused_naming_its_field(world, client_as, body, field):
    response = client_as("admin").post(url(world), body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == field
    assert Schedule.objects.filter(job=world.job).count() == 1  # the world's own


def test_a_schedule_is_created_previewed_and_explained(world, client_as):
    admin = client_as("admin")
    created = admin.post(
        url(world),
        {"kind": "cron", "cron_expression": "30 2 * * *", "timezone": "Europe/Paris"},
        format="json",
    ).json()
    SkippedFire.objects.create(
        schedule_id=created["id"],
        reason="paused",
        first_scheduled_for="2026-01-01T01:30:00Z",
        last_scheduled_for="2026-01-02T01:30:00Z",
        count=2,
    )

    preview = admin.get(url(world, f"{created['id']}/preview/?count=3")).json()
    explained = admin.get(url(world, f"{created['id']}/explain/")).json()

    assert created["description"] == "At 02:30, Europe/Paris"
    assert len(preview["fire_times"]) == 3
    assert explained["skipped"][0]["reason"] == "paused"
    assert explained["last_fires"] == []
    refused = admin.get(url(world, f"{created['id']}/preview/?count=0"))
    assert refused.json()["error"]["field"] == "count"


def test_pause_and_resume_are_audited_with_the_note(world, client_as):
    operator = client_as("operator")

    operator.post(url(world, f"{world.schedule.id}/pause/"), {"note": "vendor down"}, format="json")
    again = operator.post(url(world, f"{world.schedule.id}/pause/"), {}, format="json")
    operator.post(url(world, f"{world.schedule.id}/resume/"))

    assert again.status_code == 400
    assert list(AuditEntry.objects.order_by("id").values_list("action", "changes")) == [
        (
            "pause",
            {
                "paused": {"old": False, "new": True},
                "pause_note": {"old": "", "new": "vendor down"},
            },
        ),
        ("resume", {"paused": {"old": True, "new": False}}),
    ]


def test_a_team_cannot_have_more_active_schedules_than_its_cap(world, client_as):
    Team.objects.filter(id=world.red.id).update(max_active_schedules=2)
    admin = client_as("admin")
    body = {"kind": "interval", "interval_seconds": 60}

    second = admin.post(url(world), body, format="json")
    third = admin.post(url(world), body, format="json")
    disabled = admin.post(url(world), {**body, "enabled": False}, format="json")
    enabling = admin.patch(
        url(world, f"{disabled.json()['id']}/"), {"enabled": True}, format="json"
    )

    assert second.status_code == 201
    assert (third.status_code, third.json()["error"]["field"]) == (400, "enabled")
    assert disabled.status_code == 201
    assert enabling.status_code == 400
    paused = ScheduleFactory(job=world.job, paused=True)
    assert admin.post(url(world, f"{paused.id}/resume/")).status_code == 400


def test_a_schedule_of_another_job_is_not_found_under_this_one(world, client_as):
    blue_schedule = ScheduleFactory(job=world.blue_job)

    response = client_as("superuser").get(url(world, f"{blue_schedule.id}/"))

    assert response.status_code == 404


def test_a_timing_is_described_with_its_next_fires_before_any_schedule_is_created(world, client_as):
    query = "cron_expression=0 9 * * 1-5&timezone=Europe/Paris&count=3"

    preview = client_as("viewer").get(f"/api/v1/schedules/preview/?{query}").json()

    assert preview["description"] == "At 09:00, Monday through Friday, Europe/Paris"
    fires = [datetime.fromisoformat(fire) for fire in preview["fire_times"]]
    assert len(fires) == 3
    paris = [fire.astimezone(ZoneInfo("Europe/Paris")) for fire in fires]
    assert {(fire.hour, fire.minute) for fire in paris} == {(9, 0)}
    assert all(fire.isoweekday() <= 5 for fire in paris)
    assert Schedule.objects.count() == 1  # world's own; nothing created


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("cron_expression=61 * * * *", "cron_expression"),
        ("cron_expression=0 9 * * *&timezone=Mars/Olympus", "timezone"),
        ("once_at=2001-01-01T00:00:00Z", "once_at"),
        ("interval_seconds=60&cron_expression=* * * * *", "kind"),
        ("kind=interval", "interval_seconds"),
        ("interval_seconds=60&cron=x", "cron"),
        ("interval_seconds=60&count=101", "count"),
    ],
)
def test_a_timing_that_would_be_refused_is_refused_naming_the_field(world, client_as, query, field):
    response = client_as("viewer").get(f"/api/v1/schedules/preview/?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
