"""The notifier's looks (apps.notifications.notices) on a controlled clock: the ends and health
changes a rule asks for become one delivery each, to each webhook, however often it looks."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.utils import timezone

from apps.notifications.models import Delivery, NoticeCursor, Webhook, WebhookRule
from apps.notifications.notices import notices_collect
from apps.runs.states import RunState
from apps.schedules.services import schedule_create
from apps.workflows.models import WorkflowRunState
from apps.workflows.services import workflow_create, workflow_trigger
from tests.factories import JobFactory, RunFactory, TeamFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.fixture
def team():
    return TeamFactory(name="ops")


@pytest.fixture
def job(team):
    return JobFactory(team=team, name="nightly", task_type="dts.noop", args={})


def webhook(team, name="ops"):
    return Webhook.objects.create(
        team=team, name=name, url="https://93.184.215.14/hooks", secret="x" * 16
    )


def rule(hook, on, **target):
    return WebhookRule.objects.create(webhook=hook, on=on, **target)


def ended(job, state, at):
    return RunFactory(job=job, state=state, finished_at=at)


def look(at):
    with time_machine.travel(at, tick=False):
        return notices_collect(now=at)


def told():
    return [
        (delivery.webhook.name, delivery.event)
        for delivery in Delivery.objects.select_related("webhook").order_by("created_at", "event")
    ]


def test_an_end_a_rule_asks_for_is_told_once_to_each_webhook(team, job):
    with time_machine.travel(T0, tick=False):
        look(T0)
        rule(webhook(team), ["failure"], job=job)
        rule(webhook(team, "pager"), ["failure", "success"], job=job)
    failed = ended(job, RunState.FAILED, T0 + SECOND)
    ended(job, RunState.SUCCEEDED, T0 + 2 * SECOND)
    ended(job, RunState.CANCELLED, T0 + 3 * SECOND)  # neither a failure nor a success

    assert look(T0 + 10 * SECOND) == 3
    assert look(T0 + 11 * SECOND) == 0  # a second look at the same ends writes nothing

    assert sorted(told()) == [
        ("ops", "run.failed"),
        ("pager", "run.failed"),
        ("pager", "run.succeeded"),
    ]
    delivery = Delivery.objects.get(webhook__name="ops")
    assert delivery.payload["team"] == "ops"
    assert delivery.payload["job"] == {"id": job.id, "name": "nightly"}
    assert delivery.payload["run"]["id"] == str(failed.id)
    assert delivery.payload["run"]["state"] == "failed"


def test_an_end_committed_after_the_look_that_passed_its_time_is_still_told(team, job):
    with time_machine.travel(T0, tick=False):
        look(T0)
        rule(webhook(team), ["failure"], job=job)
    look(T0 + 30 * SECOND)

    ended(job, RunState.LOST, T0 + 20 * SECOND)  # stamped before that look, committed after it
    look(T0 + 31 * SECOND)

    assert told() == [("ops", "run.failed")]


def test_what_ended_before_the_rule_was_made_is_not_told(team, job):
    with time_machine.travel(T0, tick=False):
        look(T0)
    ended(job, RunState.FAILED, T0 + SECOND)
    with time_machine.travel(T0 + 5 * SECOND, tick=False):
        rule(webhook(team), ["failure"], job=job)

    look(T0 + 10 * SECOND)

    assert told() == []


def test_a_workflow_runs_end_is_told_with_its_steps(team, job):
    workflow = workflow_create(team=team, name="etl", steps=[{"name": "load", "job": job}])
    with time_machine.travel(T0, tick=False):
        look(T0)
        rule(webhook(team), ["failure"], workflow=workflow)
    workflow_run = workflow_trigger(workflow=workflow)
    workflow_run.state, workflow_run.finished_at = WorkflowRunState.FAILED, T0 + SECOND
    workflow_run.save()

    look(T0 + 10 * SECOND)

    [delivery] = Delivery.objects.all()
    assert delivery.event == "workflow_run.failed"
    assert delivery.payload["workflow"] == {"id": workflow.id, "name": "etl"}
    assert delivery.payload["workflow_run"]["steps"] == {"load": "running"}


def test_a_job_turning_late_then_missed_is_told_once_each(team, job, settings):
    settings.DTS_JOB_HEALTH_GRACE_SECONDS = 60
    with time_machine.travel(T0, tick=False):
        schedule_create(job=job, kind="cron", cron_expression="0 * * * *")
        rule(webhook(team), ["late", "missed"], job=job)
    ten = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)

    look(ten + 30 * SECOND)  # within the grace: ok
    look(ten + 61 * SECOND)  # late
    look(ten + 120 * SECOND)  # still late: nothing new
    look(ten + timedelta(hours=1, seconds=61))  # 11:00 not answered either: missed

    assert told() == [("ops", "job.late"), ("ops", "job.missed")]
    late = Delivery.objects.get(event="job.late")
    assert late.payload["health"] == "late"
    assert late.payload["job"]["name"] == "nightly"


@pytest.mark.django_db(transaction=True)
def test_one_notifier_looks_at_a_time():
    team = TeamFactory(name="ops")
    job = JobFactory(team=team, name="nightly", task_type="dts.noop", args={})
    notices_collect(now=timezone.now() - 10 * SECOND)  # the cursors exist
    rule(webhook(team), ["failure"], job=job)
    ended(job, RunState.FAILED, timezone.now())
    holding, looked = threading.Event(), threading.Event()

    def other_replica():
        try:
            with transaction.atomic():
                list(NoticeCursor.objects.select_for_update())
                holding.set()
                looked.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=other_replica)
    thread.start()
    holding.wait(10)
    passed = notices_collect(now=timezone.now() + 5 * SECOND)
    looked.set()
    thread.join()

    assert passed == 0
    assert notices_collect(now=timezone.now() + 5 * SECOND) == 1
