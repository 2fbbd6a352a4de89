"""Indexing against the real Elasticsearch and PostgreSQL: what a batch of events names becomes
documents with deterministic ids (written twice: the same documents), a run's newer state is never
overwritten by an older one, and a document Elasticsearch refuses is recorded and skipped."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk
from prometheus_client import REGISTRY

from apps.logs.documents import LINES, RUNS, TemplateConflict, templates_ensure
from apps.logs.indexer import (
    Batch,
    batch_from_events,
    batch_index,
    everything_index,
    run_action,
    written_record,
)
from apps.logs.maintenance import (
    indices_expired,
    indices_purge_expired,
    log_indices_purge_expired,
)
from apps.logs.models import IndexFailure
from apps.logs.source import LineRange, runs_read
from apps.runs.models import Run, RunAttempt, RunLogLine
from apps.runs.states import RunState
from tests.elastic import documents, searchable_count
from tests.factories import JobFactory
from tests.processes import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

LOGGED_AT = datetime(2026, 11, 30, 23, 58, tzinfo=UTC)


def run_with_lines(count: int, *, message: str = "line {n} of the nightly load") -> Run:
    job = JobFactory(name="nightly load")
    run = Run.objects.create(
        job=job,
        trigger="api",
        task_type="dts.noop",
        state=RunState.FAILED,
        worker="w1@host",
        started_at=LOGGED_AT,
        finished_at=LOGGED_AT + timedelta(seconds=3),
        error="ValueError: the bucket is empty",
    )
    Run.objects.filter(id=run.id).update(created_at=LOGGED_AT - timedelta(minutes=1))
    RunAttempt.objects.create(run=run, number=1, worker="w1@host", started_at=LOGGED_AT)
    RunLogLine.objects.bulk_create(
        RunLogLine(
            run=run,
            attempt=1,
            sequence=n,
            logged_at=LOGGED_AT + timedelta(minutes=n),  # crosses midnight: two daily indices
            level="INFO",
            logger="loader",
            message=message.format(n=n),
        )
        for n in range(1, count + 1)
    )
    return run


def test_a_batch_becomes_documents_and_again_changes_nothing(es: Elasticsearch):
    run = run_with_lines(5)
    templates_ensure(es)
    batch = Batch(ranges=[LineRange(run.id, 1, 3), LineRange(run.id, 4, 5)], run_ids={run.id})

    written = batch_index(es, batch)
    again = batch_index(es, batch)

    assert written.indexed == again.indexed == {"logs": 5, "runs": 1}
    lines = documents(es, LINES.search_pattern())
    assert sorted(lines) == [f"{run.id}:1:{n}" for n in range(1, 6)]
    first = lines[f"{run.id}:1:1"]
    assert first == {
        "run": str(run.id),
        "attempt": 1,
        "sequence": 1,
        "logged_at": "2026-11-30T23:59:00+00:00",
        "level": "INFO",
        "logger": "loader",
        "message": "line 1 of the nightly load",
        "job": run.job_id,
        "job_name": "nightly load",
        "team": run.job.team_id,
        "task_type": "dts.noop",
        "queue": run.queue,
        "worker": "w1@host",
    }
    indices = sorted(es.indices.get(index=LINES.search_pattern()))
    assert indices == [LINES.index_for(LOGGED_AT), LINES.index_for(LOGGED_AT + timedelta(days=1))]
    runs = documents(es, RUNS.search_pattern())
    assert runs[str(run.id)]["error"] == "ValueError: the bucket is empty"
    assert runs[str(run.id)]["duration_seconds"] == 3.0
    assert searchable_count(es, LINES.search_pattern()) == 5


def test_an_older_state_of_a_run_never_overwrites_a_newer_one(es: Elasticsearch):
    run = run_with_lines(0)
    templates_ensure(es)
    newer = runs_read([run.id])[0]
    older = newer | {"state": RunState.RUNNING, "finished_at": None}
    bulk(es, [run_action(newer)], refresh=True)
    errors = bulk(es, [run_action(older)], refresh=True, raise_on_error=False)[1]

    assert [next(iter(error.values()))["status"] for error in errors] == [409]
    assert documents(es, RUNS.search_pattern())[str(run.id)]["state"] == RunState.FAILED
    assert batch_index(es, Batch(run_ids={run.id})).indexed == {"runs": 1}  # a 409: up to date


def test_a_document_elasticsearch_refuses_is_recorded_and_skipped(es: Elasticsearch):
    run = run_with_lines(3)
    RunLogLine.objects.filter(run=run, sequence=2).update(message="x" * 40_000)
    templates_ensure(es)
    # An index whose mapping refuses a term over 32 KB: the long line only.
    es.indices.create(
        index=LINES.index_for(LOGGED_AT + timedelta(minutes=2)),
        mappings={"properties": {"message": {"type": "keyword"}}},
    )

    refused_before = REGISTRY.get_sample_value("dts_logs_index_failures_total", {"kind": "logs"})

    written = batch_index(es, Batch(ranges=[LineRange(run.id, 1, 3)]))
    written_record(written)

    assert written.indexed == {"logs": 2}
    refused_after = REGISTRY.get_sample_value("dts_logs_index_failures_total", {"kind": "logs"})
    assert (refused_after or 0) - (refused_before or 0) == 1
    failure = IndexFailure.objects.get()
    assert failure.document_id == f"{run.id}:1:2"
    assert failure.status == 400
    assert "failed to parse field [message] of type [keyword]" in failure.reason
    assert failure.document.startswith("{")
    assert str(run.id) in failure.document
    assert sorted(documents(es, LINES.search_pattern())) == [f"{run.id}:1:1", f"{run.id}:1:3"]
    batch_index(es, Batch(ranges=[LineRange(run.id, 1, 3)]))
    assert IndexFailure.objects.count() == 1  # tried again: the same record, updated


def test_events_name_the_ranges_and_runs_and_anything_else_is_left():
    run_id = uuid.uuid4()
    run = str(run_id)
    events = [
        {"type": "dts.run.logged", "time": "2026-12-01T10:00:02Z", "data": {
            "run_id": run, "attempt": 1, "first_sequence": 1, "last_sequence": 100}},
        {"type": "dts.run.failed", "time": "2026-12-01T10:00:01Z", "data": {"run_id": run}},
        {"type": "dts.run.started", "time": "2026-12-01T10:00:00Z", "data": {"run_id": run}},
        {"type": "dts.job.created", "time": "2026-12-01T09:00:00Z", "data": {"job_id": 1}},
        {"type": "dts.run.logged", "data": {"run_id": "not a uuid"}},
        {"type": "dts.run.failed", "data": {}},
    ]  # fmt: skip

    batch = batch_from_events(events)

    assert batch.ranges == [LineRange(run_id, 1, 100)]
    assert batch.run_ids == {run_id}
    assert batch.oldest == datetime(2026, 12, 1, 10, tzinfo=UTC)


def test_templates_are_idempotent_and_a_changed_mapping_is_refused(es: Elasticsearch):
    templates_ensure(es)
    templates_ensure(es)
    name = LINES.template_name()
    body = LINES.template_body()
    es.indices.put_index_template(name=name, **(body | {"_meta": {"dts_mapping_digest": "other"}}))

    with pytest.raises(TemplateConflict, match="MAPPING_VERSION"):
        templates_ensure(es)


def test_indices_past_retention_are_deleted(es: Elasticsearch, settings):
    settings.DTS_LOG_RETENTION_DAYS = 30
    templates_ensure(es)
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    for day in (datetime(2026, 10, 31, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)):
        es.indices.create(index=LINES.index_for(day))
    for month in (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)):
        es.indices.create(index=RUNS.index_for(month))

    assert indices_purge_expired(es, now=now) == [
        LINES.index_for(datetime(2026, 10, 31, tzinfo=UTC)),
        RUNS.index_for(datetime(2026, 10, 1, tzinfo=UTC)),
    ]
    assert indices_expired(es, now=now) == []
    assert sorted(es.indices.get(index=f"{settings.DTS_LOG_INDEX_PREFIX}-*")) == [
        LINES.index_for(datetime(2026, 11, 1, tzinfo=UTC)),
        RUNS.index_for(datetime(2026, 11, 1, tzinfo=UTC)),
    ]
    settings.DTS_LOG_RETENTION_DAYS = 0
    assert indices_expired(es, now=now + timedelta(days=3650)) == []


def test_the_rebuild_indexes_everything_postgresql_holds(es: Elasticsearch):
    runs = [run_with_lines(7), run_with_lines(0), run_with_lines(3)]

    written = everything_index(es, page=4)
    call_command("reindex_logs")

    assert written.indexed == {"logs": 10, "runs": 3}
    assert searchable_count(es, LINES.search_pattern()) == 10
    assert sorted(documents(es, RUNS.search_pattern())) == sorted(str(run.id) for run in runs)


def test_the_commands_refuse_without_elasticsearch_or_with_bad_arguments(settings):
    with pytest.raises(CommandError, match="--batch-size must be between 1 and 10000"):
        call_command("index_logs", "--batch-size", "0")
    with pytest.raises(CommandError, match="--metrics-port must be between 0 and 65535"):
        call_command("index_logs", "--metrics-port", "70000")
    settings.ELASTICSEARCH_URL = ""
    for command in ("index_logs", "reindex_logs"):
        with pytest.raises(CommandError, match="ELASTICSEARCH_URL is not set"):
            call_command(command)


def test_the_schedulers_hourly_step_deletes_expired_indices_and_survives_an_outage(
    es: Elasticsearch, settings, caplog
):
    expired = LINES.index_for(datetime(2026, 1, 1, tzinfo=UTC))
    es.indices.create(index=expired)

    log_indices_purge_expired(now=datetime(2026, 12, 1, tzinfo=UTC))
    assert not es.indices.exists(index=expired)

    settings.ELASTICSEARCH_URL = f"http://127.0.0.1:{free_port()}"
    log_indices_purge_expired(now=datetime(2026, 12, 1, tzinfo=UTC))
    assert "Expired log indices not deleted" in caplog.text
    settings.ELASTICSEARCH_URL = ""
    log_indices_purge_expired(now=datetime(2026, 12, 1, tzinfo=UTC))  # none: nothing to do
