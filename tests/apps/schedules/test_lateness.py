"""A fire's lateness, as docs/scheduling.md measures it (created_at - scheduled_for), survives a
retry; queued_at, which the docs once measured it by, does not."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from apps.runs.models import Run
from apps.runs.services.moves import runs_retry_due
from apps.runs.states import RunState
from apps.schedules.firing import schedules_fire_due
from apps.schedules.services import schedule_create
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

DUE = datetime(2026, 5, 4, 12, tzinfo=UTC)


def test_a_retried_scheduled_run_keeps_its_lateness():
    with time_machine.travel(DUE - timedelta(minutes=5), tick=False):
        schedule_create(
            job=JobFactory(task_type="dts.noop", args={}), kind="cron", cron_expression="0 12 * * *"
        )
    fired_at = DUE + timedelta(seconds=5)
    with time_machine.travel(fired_at, tick=False):
        schedules_fire_due(now=fired_at, batch_size=10)
    Run.objects.update(state=RunState.RETRYING, next_attempt_at=DUE + timedelta(minutes=10))

    with time_machine.travel(DUE + timedelta(minutes=10), tick=False):
        runs_retry_due(now=DUE + timedelta(minutes=10))

    run = Run.objects.get()
    assert run.created_at - run.scheduled_for == timedelta(seconds=5)
    assert run.queued_at == DUE + timedelta(minutes=10)
