from datetime import UTC, datetime

import pytest
from django.db import connection

from apps.core.db import execute_prepared, models_insert, models_update
from apps.events.models import EventType, OutboxEvent
from apps.events.outbox import event_new
from apps.runs.models import Run, RunTrigger
from apps.runs.states import RunState
from tests.factories import JobFactory, ScheduleFactory

pytestmark = pytest.mark.django_db


def test_a_prepared_statement_is_prepared_once_per_session(django_assert_num_queries):
    sql = "SELECT %s::int + %s::int"
    with connection.cursor() as cursor:
        execute_prepared(cursor, sql, [1, 2])
        assert cursor.fetchone() == (3,)

    with django_assert_num_queries(1), connection.cursor() as cursor:
        execute_prepared(cursor, sql, [2, 3])
        assert cursor.fetchone() == (5,)


@pytest.mark.django_db(transaction=True)
def test_a_new_session_prepares_it_again():
    sql = "SELECT %s::text || 'b'"
    with connection.cursor() as cursor:
        execute_prepared(cursor, sql, ["a"])
    connection.close()  # as after a database restart: a new session, with nothing prepared

    with connection.cursor() as cursor:
        execute_prepared(cursor, sql, ["x"])
        assert cursor.fetchone() == ("xb",)


FIELDS_READ_BACK = [
    "job_id", "schedule_id", "trigger", "state", "attempt", "task_type", "args", "queue",
    "scheduled_for", "priority", "queued_at", "started_at", "finished_at", "next_attempt_at",
    "worker", "last_seen_at", "result", "error", "traceback",
]  # fmt: skip


def test_models_insert_writes_each_value_as_save_would():
    job = JobFactory()
    at = datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=UTC)
    values = {
        "job": job,
        "trigger": RunTrigger.SCHEDULE,
        "state": RunState.FAILED,
        "task_type": "dts.noop",
        "args": {"text": 'quote " and \\ and ünicode', "nested": [1, 2.5, None, True]},
        "queue": "default",
        "scheduled_for": at,
        "finished_at": at,
        "result": {"when": at},  # its encoder writes dates and times
        "error": "Not run: $.n: 'x' is not of type 'integer'",
    }
    saved, inserted = Run(**values), Run(**values)
    saved.save()

    keys = models_insert([inserted])

    assert keys == [inserted.id]
    rows = Run.objects.filter(id__in=[saved.id, inserted.id]).values(*FIELDS_READ_BACK, "id")
    by_id = {row.pop("id"): row for row in rows}
    assert by_id[inserted.id] == by_id[saved.id]
    assert inserted.created_at is not None  # auto_now_add is set, on the object too
    assert Run.objects.get(id=inserted.id).created_at == inserted.created_at


def test_models_insert_sets_automatic_keys_and_skips_conflicts_when_asked():
    job = JobFactory()
    events = [
        event_new(type=EventType.JOB_CREATED, subject="jobs/1", job_id=job.id, data={"n": n})
        for n in range(3)
    ]
    sequences = models_insert(events)
    assert [event.sequence for event in events] == sequences
    assert list(OutboxEvent.objects.order_by("sequence").values_list("data", flat=True)) == [
        {"n": 0},
        {"n": 1},
        {"n": 2},
    ]

    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    schedule = ScheduleFactory(job=job)
    first = Run(job=job, schedule=schedule, scheduled_for=at, task_type="dts.noop", queue="default")
    again = Run(job=job, schedule=schedule, scheduled_for=at, task_type="dts.noop", queue="default")
    other = Run(job=job, task_type="dts.noop", queue="default")
    assert models_insert([first]) == [first.id]
    # The same schedule and due time again: left out, and not among the keys returned.
    assert models_insert([again, other], ignore_conflicts=True) == [other.id]
    assert set(Run.objects.values_list("id", flat=True)) == {first.id, other.id}


def test_models_update_writes_the_fields_named_and_no_other(django_assert_num_queries):
    job = JobFactory(task_type="dts.noop", args={})
    runs = [
        Run.objects.create(job=job, trigger=RunTrigger.API, task_type="dts.noop", args={"n": n})
        for n in range(3)
    ]
    finished = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    for n, run in enumerate(runs):
        run.state, run.result, run.finished_at = RunState.SUCCEEDED, {"n": n}, finished
        run.args = {"changed": True}  # not among the fields written

    with django_assert_num_queries(1):
        models_update(runs, ["state", "result", "finished_at"])

    for n, run in enumerate(runs):
        stored = Run.objects.get(id=run.id)
        assert (stored.state, stored.result, stored.finished_at) == (
            "succeeded",
            {"n": n},
            finished,
        )
        assert stored.args == {"n": n}
