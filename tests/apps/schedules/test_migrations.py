"""Stored cron expressions that dts no longer accepts are paused on upgrade, saying why."""

import importlib

import pytest
from django.apps import apps

from apps.schedules.models import Schedule
from tests.factories import ScheduleFactory

pytestmark = pytest.mark.django_db

upgrade = importlib.import_module("apps.schedules.migrations.0002_pause_refused_cron")


def test_schedules_with_a_refused_cron_are_paused_with_the_reason():
    reversed_range = ScheduleFactory(
        kind="cron", interval_seconds=None, cron_expression="0 23-1 * * *"
    )
    random_time = ScheduleFactory(kind="cron", interval_seconds=None, cron_expression="R R * * *")
    valid = ScheduleFactory(kind="cron", interval_seconds=None, cron_expression="0 0 * * 1-1")
    interval = ScheduleFactory()

    upgrade.refused_crons_pause(apps, None)

    paused = dict(Schedule.objects.filter(paused=True).values_list("id", "pause_note"))
    assert set(paused) == {reversed_range.id, random_time.id}
    assert "hour field '23-1': a reversed range" in paused[reversed_range.id]
    assert "minute field 'R': R (a random time) is not supported" in paused[random_time.id]
    assert not Schedule.objects.filter(id__in=[valid.id, interval.id], paused=True).exists()
