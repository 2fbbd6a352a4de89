from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.admin.utils import flatten_fieldsets
from django.urls import reverse

from apps.schedules.admin import ScheduleAdmin
from apps.schedules.models import Schedule
from apps.schedules.services import EDITABLE_FIELDS, schedule_create
from tests.factories import JobFactory, ScheduleFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 5, 4, 12, 0, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


def schedule_form(job, **fields):
    return {
        "job": job.id,
        "kind": "cron",
        "cron_expression": "*/5 * * * *",
        "timezone": "UTC",
        "interval_seconds": "",
        "once_at_0": "",
        "once_at_1": "",
        "start_at_0": "",
        "start_at_1": "",
        "end_at_0": "",
        "end_at_1": "",
        "jitter_seconds": "0",
        "misfire_policy": "run_once",
        "catch_up_window_seconds": "3600",
        "catch_up_max_fires": "10",
        "enabled": "on",
        "pause_note": "",
        **fields,
    }


def test_admin_creates_a_schedule_with_its_next_fire(admin_client):
    job = JobFactory()

    response = admin_client.post(reverse("admin:schedules_schedule_add"), schedule_form(job))

    assert response.status_code == 302
    assert Schedule.objects.get(job=job).next_scheduled_for == datetime(
        2026, 5, 4, 12, 5, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"cron_expression": "0 0 31 2 *"}, "cron_expression", "never fires"),
        ({"timezone": "Atlantis/Capital"}, "timezone", "not an IANA time zone"),
        (
            {"kind": "interval", "cron_expression": "", "interval_seconds": "0"},
            "interval_seconds",
            "between 1",
        ),
    ],
)
def test_admin_form_names_the_field_and_the_reason(admin_client, fields, field, reason):
    response = admin_client.post(
        reverse("admin:schedules_schedule_add"), schedule_form(JobFactory(), **fields)
    )

    assert response.status_code == 200
    assert reason in " ".join(response.context["adminform"].form.errors[field])
    assert Schedule.objects.count() == 0


def test_admin_shows_the_preview_and_the_explanation(admin_client):
    schedule = schedule_create(
        job=JobFactory(), kind="cron", cron_expression="0 9 * * *", timezone_name="Europe/Paris"
    )

    page = admin_client.get(
        reverse("admin:schedules_schedule_change", args=[schedule.id])
    ).content.decode()

    assert "2026-05-05T09:00:00+02:00 (2026-05-05T07:00:00+00:00)" in page
    assert "Skipped:" in page


def test_admin_pauses_with_a_note_and_who_paused(admin_client, admin_user):
    schedule = schedule_create(job=JobFactory(), kind="cron", cron_expression="@daily")

    admin_client.post(
        reverse("admin:schedules_schedule_change", args=[schedule.id]),
        schedule_form(
            schedule.job, cron_expression="@daily", paused="on", pause_note="db migration"
        ),
    )

    schedule.refresh_from_db()
    assert (schedule.paused, schedule.pause_note, schedule.paused_by) == (
        True,
        "db migration",
        admin_user,
    )


def test_admin_shows_and_resumes_a_stored_refused_cron_with_the_reason(admin_client):
    # Stored before the rules (croniter took it), then paused.
    stored = ScheduleFactory(
        kind="cron", interval_seconds=None, cron_expression="0 23-1 * * *", paused=True
    )
    reason = "hour field &#x27;23-1&#x27;: a reversed range"

    page = admin_client.get(reverse("admin:schedules_schedule_change", args=[stored.id]))
    resumed = admin_client.post(
        reverse("admin:schedules_schedule_changelist"),
        {"action": "resume", "_selected_action": [stored.id]},
        follow=True,
    )

    assert page.status_code == 200
    assert reason in page.content.decode()
    assert resumed.status_code == 200
    assert reason in resumed.content.decode()
    stored.refresh_from_db()
    assert stored.paused


def test_admin_form_shows_every_field_the_service_lets_change_once():
    shown = flatten_fieldsets(ScheduleAdmin.fieldsets)

    assert set(shown) >= EDITABLE_FIELDS
    assert len(shown) == len(set(shown))
