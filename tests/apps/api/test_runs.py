import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from apps.api.runs import RunSerializer
from apps.audit.models import AuditEntry
from apps.runs.models import Run, RunLogLine
from apps.runs.states import RunState
from tests.factories import RunFactory

pytestmark = pytest.mark.django_db


def test_runs_are_listed_newest_first_by_cursor_and_filtered(world, client_as):
    now = timezone.now()
    for minutes in range(5):
        run = RunFactory(job=world.job, task_type="dts.noop", args={}, state=RunState.SUCCEEDED)
        Run.objects.filter(id=run.id).update(created_at=now - timedelta(minutes=minutes))
    viewer = client_as("viewer")

    first = viewer.get(f"/api/v1/runs/?job={world.job.id}&state=succeeded&limit=3").json()
    second = viewer.get(first["next"]).json()

    times = [run["created_at"] for run in first["results"] + second["results"]]
    assert len(times) == 5
    assert times == sorted(times, reverse=True)
    recent = viewer.get(
        "/api/v1/runs/", {"created_after": (now - timedelta(minutes=1, seconds=30)).isoformat()}
    ).json()["results"]
    assert {run["state"] for run in recent} <= {"succeeded", "queued", "failed"}
    assert len([run for run in recent if run["state"] == "succeeded"]) == 2


def test_a_listed_run_reads_as_the_run_serializer_writes_it(world, client_as):
    now = timezone.now()
    run = RunFactory(
        job=world.job,
        schedule=world.schedule,
        trigger="schedule",
        state=RunState.FAILED,
        task_type="dts.noop",
        args={"nested": {"list": [1, 2.5, None]}},
        scheduled_for=now - timedelta(seconds=3),
        started_at=now - timedelta(seconds=2),
        finished_at=now - timedelta(microseconds=1),
        next_attempt_at=now + timedelta(minutes=1),
        worker="worker@host",
        result={"ok": False},
        error="boom",
    )
    run.refresh_from_db()

    listed = client_as("viewer").get(f"/api/v1/runs/?job={world.job.id}&state=failed").json()

    item = next(item for item in listed["results"] if item["id"] == str(run.id))
    assert item == rendered(RunSerializer(run).data)


def rendered(data):
    return json.loads(JSONRenderer().render(data))


@pytest.mark.parametrize(
    ("query", "field"),
    [("state=sleeping", "state"), ("job=abc", "job"), ("created_after=yesterday", "created_after")],
)
def test_a_bad_filter_is_refused_naming_it(world, client_as, query, field):
    response = client_as("viewer").get(f"/api/v1/runs/?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


def test_a_run_shows_its_attempts_and_its_log_is_paged(world, client_as):
    run = world.failed_run
    run.attempts.create(
        number=1, worker="w1", started_at=timezone.now(), outcome="failed", error="x"
    )
    RunLogLine.objects.bulk_create(
        RunLogLine(
            run=run,
            attempt=1,
            sequence=n,
            logged_at=timezone.now(),
            level="INFO",
            logger="t",
            message=f"line {n}",
        )
        for n in range(1, 6)
    )
    viewer = client_as("viewer")

    detail = viewer.get(f"/api/v1/runs/{run.id}/").json()
    page = viewer.get(f"/api/v1/runs/{run.id}/log/?limit=3").json()
    rest = viewer.get(f"/api/v1/runs/{run.id}/log/?after={page['next_after']}").json()

    assert [attempt["worker"] for attempt in detail["attempts"]] == ["w1"]
    assert [line["message"] for line in page["lines"]] == ["line 1", "line 2", "line 3"]
    assert not page["finished"]
    assert [line["message"] for line in rest["lines"]] == ["line 4", "line 5"]
    assert rest["finished"]


def test_cancel_and_retry_are_audited_and_refused_when_the_state_forbids(world, client_as):
    operator = client_as("operator")

    cancelled = operator.post(f"/api/v1/runs/{world.queued_run.id}/cancel/")
    again = operator.post(f"/api/v1/runs/{world.queued_run.id}/cancel/")
    retried = operator.post(f"/api/v1/runs/{world.queued_run.id}/retry/")
    not_yet = operator.post(f"/api/v1/runs/{RunFactory(job=world.job).id}/retry/")

    assert cancelled.json()["state"] == "cancelled"
    assert (again.status_code, again.json()["error"]["code"]) == (409, "invalid_transition")
    assert retried.status_code == 201
    assert not_yet.status_code == 409
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == [
        "cancel",
        "retry",
    ]


def test_runs_per_minute_count_the_runs_that_ended_each_minute_by_outcome(world, client_as):
    now = timezone.now()
    RunFactory(job=world.job, state=RunState.SUCCEEDED, finished_at=now)
    RunFactory(job=world.job, state=RunState.TIMED_OUT, finished_at=now - timedelta(minutes=3))

    chart = client_as("viewer").get("/api/v1/runs/per-minute/?minutes=10").json()
    of_job = client_as("viewer").get(f"/api/v1/runs/per-minute/?job={world.blue_job.id}").json()

    assert chart["minutes"] == 10
    assert list(chart["counts"]) == ["succeeded", "failed", "timed_out", "cancelled", "lost"]
    assert chart["counts"]["succeeded"][-1] == 1
    assert sum(chart["counts"]["timed_out"][-5:-2]) == 1  # 3 minutes ago, whatever the second
    assert len(chart["counts"]["failed"]) == 10
    assert sum(map(sum, of_job["counts"].values())) == 0
    assert len(of_job["counts"]["succeeded"]) == 60


@pytest.mark.parametrize(
    ("query", "field"),
    [("minutes=0", "minutes"), ("minutes=61", "minutes"), ("job=abc", "job"), ("days=1", "days")],
)
def test_a_bad_runs_per_minute_parameter_is_refused_naming_it(world, client_as, query, field):
    response = client_as("viewer").get(f"/api/v1/runs/per-minute/?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
