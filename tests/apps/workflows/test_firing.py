"""Workflows on schedules: defined with the workflow, refused naming the field, and fired by the
scheduler's ticks on a controlled clock, once per due time, with the misfire and overlap policies
of a job's schedules."""

from datetime import UTC, datetime, timedelta

import psycopg2
import pytest
import time_machine
from django.db import connection

from apps.core.exceptions import ValidationFailed
from apps.runs.models import Run, RunTrigger
from apps.runs.states import RunState
from apps.workflows.firing import workflow_schedules_fire_due
from apps.workflows.models import Workflow, WorkflowRunState, WorkflowSchedule
from apps.workflows.services import (
    workflow_create,
    workflow_definition,
    workflow_trigger,
    workflow_update,
)
from dispatch.celery import app
from tests.factories import JobFactory, TeamFactory
from workers.scheduler import DatabaseScheduler

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
EVERY_MINUTE = {"kind": "cron", "cron_expression": "* * * * *"}


def scheduled(*schedules, at=T0 - timedelta(seconds=30), name="etl", **fields):
    team = TeamFactory()
    job = JobFactory(team=team, name="load", task_type="dts.noop", args={})
    steps = [{"name": "a", "job": job}, {"name": "b", "job": job, "depends_on": ["a"]}]
    with time_machine.travel(at, tick=False):
        return workflow_create(
            team=team, name=name, steps=steps, schedules=list(schedules), **fields
        )


def fired_times(workflow):
    return list(workflow.runs.order_by("scheduled_for").values_list("scheduled_for", flat=True))


def fire(now):
    return workflow_schedules_fire_due(now=now, batch_size=100)


def test_a_due_time_starts_one_workflow_run_however_often_the_scheduler_looks(sent_tasks):
    workflow = scheduled(EVERY_MINUTE)

    for seconds in (1, 2, 30):
        fire(T0 + timedelta(seconds=seconds))

    [workflow_run] = workflow.runs.all()
    assert (workflow_run.trigger, workflow_run.scheduled_for) == (RunTrigger.SCHEDULE, T0)
    assert {step.name: step.state for step in workflow_run.steps.all()} == {
        "a": "running",
        "b": "pending",
    }
    assert Run.objects.get(workflow_run=workflow_run).trigger == RunTrigger.SCHEDULE
    fire(T0 + MINUTE)
    assert fired_times(workflow) == [T0, T0 + MINUTE]


def test_a_disabled_schedule_or_one_not_yet_due_does_not_fire():
    workflow = scheduled(
        {**EVERY_MINUTE, "enabled": False}, {"kind": "once", "once_at": T0 + timedelta(days=1)}
    )

    assert fire(T0 + timedelta(seconds=1)) == 0
    assert fired_times(workflow) == []


@pytest.mark.parametrize(
    ("schedules", "field", "message"),
    [
        (
            [EVERY_MINUTE, {"kind": "cron", "cron_expression": "61 * * * *"}],
            "schedules[1].cron_expression",
            "61",
        ),
        ([{"kind": "cron"}], "schedules[0].cron_expression", "required"),
        (
            [{"kind": "interval", "interval_seconds": 60, "jitter_seconds": 60}],
            "schedules[0].jitter_seconds",
            "shorter",
        ),
        ([{"kind": "once", "once_at": T0 - MINUTE}], "schedules[0].once_at", "past"),
        ([{**EVERY_MINUTE, "timezone": "Mars/Olympus"}], "schedules[0].timezone", ""),
        ([EVERY_MINUTE] * 101, "schedules", "at most 100"),
    ],
)
def test_a_schedule_that_cannot_fire_is_refused_naming_its_field_and_nothing_is_written(
    schedules, field, message
):
    with pytest.raises(ValidationFailed) as refused:
        scheduled(*schedules)

    assert refused.value.field == field
    assert message in refused.value.message
    assert not Workflow.objects.exists()
    assert not WorkflowSchedule.objects.exists()


def test_an_edit_keeps_the_schedules_it_leaves_alone_and_the_row_of_one_it_changes():
    workflow = scheduled(EVERY_MINUTE, {"kind": "interval", "interval_seconds": 600})
    kept, changed = workflow.schedules.order_by("id")
    later = T0 + timedelta(seconds=10)

    with time_machine.travel(later, tick=False):
        workflow_update(
            workflow=workflow,
            data={
                "schedules": [
                    {"kind": "interval", "interval_seconds": 900},
                    {**EVERY_MINUTE},
                ]
            },
        )

    assert list(workflow.schedules.order_by("id").values_list("id", flat=True)) == [
        kept.id,
        changed.id,
    ]
    changed.refresh_from_db()
    kept.refresh_from_db()
    assert changed.interval_seconds == 900
    assert changed.next_scheduled_for == T0 + timedelta(minutes=15)  # after the edit
    assert kept.next_scheduled_for == T0  # as it was
    assert sorted(s["kind"] for s in workflow_definition(workflow)["schedules"]) == [
        "cron",
        "interval",
    ]

    workflow_update(workflow=workflow, data={"schedules": []})
    assert not workflow.schedules.exists()


def test_scheduler_down_three_hours_honours_each_misfire_policy_without_a_burst():
    skip = scheduled({**EVERY_MINUTE, "misfire_policy": "skip"}, name="skip")
    run_once = scheduled({**EVERY_MINUTE, "misfire_policy": "run_once"}, name="run-once")
    catch_up = scheduled(
        {**EVERY_MINUTE, "misfire_policy": "catch_up", "catch_up_max_fires": 10}, name="catch-up"
    )
    fire(T0)

    fire(T0 + timedelta(hours=3, seconds=30))

    assert fired_times(skip) == [T0, T0 + 180 * MINUTE]
    assert fired_times(run_once) == [T0, T0 + 179 * MINUTE, T0 + 180 * MINUTE]
    assert fired_times(catch_up) == [T0] + [T0 + n * MINUTE for n in range(170, 181)]


def test_overlap_skip_passes_over_a_fire_while_the_previous_run_is_running():
    workflow = scheduled(EVERY_MINUTE, overlap_policy="skip")
    fire(T0)

    fire(T0 + MINUTE)

    assert fired_times(workflow) == [T0]
    workflow.runs.update(state=WorkflowRunState.SUCCEEDED)
    fire(T0 + 2 * MINUTE)
    assert fired_times(workflow) == [T0, T0 + 2 * MINUTE]


def test_overlap_cancel_previous_cancels_the_running_one_then_starts():
    workflow = scheduled(EVERY_MINUTE, overlap_policy="cancel_previous")
    fire(T0)
    first = workflow.runs.get()

    fire(T0 + MINUTE)

    first.refresh_from_db()
    assert first.state == WorkflowRunState.CANCELLED
    assert Run.objects.get(workflow_run=first).state == RunState.CANCELLED
    assert fired_times(workflow) == [T0, T0 + MINUTE]


def test_overlap_allow_starts_alongside_the_running_one():
    workflow = scheduled(EVERY_MINUTE)
    fire(T0)

    fire(T0 + MINUTE)

    assert list(workflow.runs.values_list("state", flat=True)) == ["running", "running"]


def test_a_fire_time_that_already_has_its_workflow_run_is_passed_over_without_an_error():
    workflow = scheduled(EVERY_MINUTE)
    schedule = workflow.schedules.get()
    workflow_trigger(workflow=workflow, schedule=schedule, scheduled_for=T0)

    assert fire(T0 + timedelta(seconds=1)) == 1

    assert fired_times(workflow) == [T0]
    assert WorkflowSchedule.objects.get().next_scheduled_for == T0 + MINUTE


@pytest.mark.django_db(transaction=True)
def test_a_tick_passes_over_a_workflow_schedule_another_scheduler_holds():
    held = scheduled(EVERY_MINUTE, name="held")
    free = scheduled(EVERY_MINUTE, name="free")
    other = psycopg2.connect(**connection.get_connection_params())
    try:
        with other.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {WorkflowSchedule._meta.db_table} WHERE workflow_id = %s "  # noqa: S608
                "FOR UPDATE",
                [held.id],
            )
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '5s'")  # a tick that waited would fail

        assert fire(T0 + timedelta(seconds=1)) == 1
    finally:
        other.rollback()
        other.close()

    assert (fired_times(held), fired_times(free)) == ([], [T0])


def test_the_scheduler_fires_workflow_schedules_and_sleeps_until_the_next_one():
    workflow = scheduled({"kind": "cron", "cron_expression": "30 12 * * *"})
    scheduler = DatabaseScheduler(app=app, lazy=True)

    with time_machine.travel(T0 + timedelta(minutes=30, seconds=-3), tick=False):
        assert scheduler.seconds_until_due() == 3
    with time_machine.travel(T0 + timedelta(minutes=30), tick=False):
        scheduler.fire_due()

    assert fired_times(workflow) == [T0 + timedelta(minutes=30)]
