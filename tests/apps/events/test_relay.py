"""The relay against the real Kafka and PostgreSQL: every event published once and in order per
job, nothing lost while Kafka is stopped, when a relay is SIGKILLed mid-batch, or with two relays.
Each test publishes to a topic of its own."""

import io
import json
import logging
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from unittest import mock

import psycopg2
import pytest
import requests
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import close_old_connections, connection
from django.utils import timezone
from prometheus_client import REGISTRY
from psycopg2.extensions import TRANSACTION_STATUS_IDLE

from apps.events.consumer import EventStream
from apps.events.kafka import producer_new
from apps.events.models import IdleRelay, OutboxEvent
from apps.events.outbox import event_new
from apps.events.relay import TURN_LOCK, Relay
from apps.events.validation import event_problems
from apps.jobs.services import job_create, job_update
from apps.runs.models import Run
from apps.runs.services.build import run_trigger
from apps.runs.services.moves import run_attempt_end, run_start
from apps.runs.states import RunState
from tests.backing_services.control import restored, service
from tests.conftest import REPO, database_url, stop_process, wait_for_log_line
from tests.factories import TeamFactory
from tests.metrics import promtool_check

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

RELAY_ENV = {"DTS_RELAY_DELIVERY_TIMEOUT_SECONDS": "5", "DTS_RELAY_MAX_BACKOFF_SECONDS": "2"}
# The outage test's Kafka stays stopped at least this long: several of the relay's delivery
# timeouts and back-offs (RELAY_ENV), and past librdkafka's longest wait between reconnects (10 s).
OUTAGE_SECONDS = 20


@pytest.fixture
def topic(settings):
    settings.DTS_EVENTS_TOPIC = f"dts-test-{uuid.uuid4().hex[:8]}"
    return settings.DTS_EVENTS_TOPIC


@pytest.fixture
def relays(topic, tmp_path):
    """Start relay processes on this test's topic; all are stopped at the end."""
    started: list[subprocess.Popen] = []

    def start(batch_size: int = 2000, metrics_port: int = 0) -> subprocess.Popen:
        log = tmp_path / f"relay-{len(started)}.log"
        env = {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url(),
            # The Kafka the tests use (and the outage test stops), not the settings' default.
            "KAFKA_BOOTSTRAP_SERVERS": settings.KAFKA_BOOTSTRAP_SERVERS,
            "DTS_EVENTS_TOPIC": topic,
            **RELAY_ENV,
        }
        command = [sys.executable, "manage.py", "relay_events"]
        command += ["--metrics-port", str(metrics_port)]
        command += ["--batch-size", str(batch_size)]
        with log.open("w") as output:
            process = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT
            )
        started.append(process)
        wait_for_log_line(Path(log), "Relay started", process, timeout=60)
        return process

    yield start
    for process in started:
        stop_process(process)


def consume(expected: int, timeout: float = 60) -> tuple[list[dict], int]:
    """The topic's events from its start, each once, and how many duplicates were dropped."""
    stream = EventStream(group_id=f"test-{uuid.uuid4().hex}", from_beginning=True)
    received: list[dict] = []
    deadline = time.monotonic() + timeout
    for event in stream.events(idle_timeout=15):
        received.append(event)
        if len(received) >= expected or time.monotonic() > deadline:
            break
    return received, stream.duplicates


def wait_all_published(timeout: float) -> float:
    """Seconds until no event is left unpublished."""
    started = time.monotonic()
    while True:
        close_old_connections()
        left = OutboxEvent.objects.filter(published_at__isnull=True).count()
        if not left:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, f"{left} events unpublished after {timeout} s"
        time.sleep(0.2)


def run_lifecycles(jobs, per_job: int) -> None:
    """Queued runs of each job started and succeeded by the services workers call, in turn."""
    for _ in range(per_job):
        for job in jobs:
            run = Run.objects.create(job=job, trigger="api", task_type="dts.noop", state="queued")
            run_start(run_id=run.id, attempt=1, worker="test")
            run_attempt_end(run_id=run.id, attempt=1, outcome=RunState.SUCCEEDED)


def outbox_ids_by_job() -> dict[int, list[str]]:
    by_job: dict[int, list[str]] = defaultdict(list)
    for job_id, event_id in OutboxEvent.objects.order_by("sequence").values_list(
        "job_id", "event_id"
    ):
        by_job[job_id].append(str(event_id))
    return by_job


def received_ids_by_job(received: list[dict]) -> dict[int, list[str]]:
    by_job: dict[int, list[str]] = defaultdict(list)
    for event in received:
        by_job[event["data"]["job_id"]].append(event["id"])
    return by_job


def types_by_subject(received: list[dict]) -> dict[str, list[str]]:
    by_subject: dict[str, list[str]] = defaultdict(list)
    for event in received:
        by_subject[event["subject"]].append(event["type"].removeprefix("dts.run."))
    return by_subject


def test_every_event_is_published_once_schema_valid_and_in_order_per_job(
    relays, celery_worker_process
):
    jobs = [
        job_create(team=TeamFactory(), name=f"events {n}", task_type="dts.noop") for n in range(5)
    ]
    job_update(job=jobs[0], data={"enabled": False})
    runs = [run_trigger(job=job).id for job in jobs[1:] for _ in range(20)]
    relays()

    deadline = time.monotonic() + 60
    while Run.objects.filter(id__in=runs, state=RunState.SUCCEEDED).count() < len(runs):
        assert time.monotonic() < deadline, "runs did not finish"
        time.sleep(0.2)
    wait_all_published(timeout=30)
    expected = OutboxEvent.objects.count()
    received, _ = consume(expected)

    assert len(received) == expected
    assert {
        str(event_id) for event_id in OutboxEvent.objects.values_list("event_id", flat=True)
    } == {event["id"] for event in received}
    assert [problem for event in received for problem in event_problems(event)] == []
    # Each run's events in the order they happened.
    lifecycles = [types_by_subject(received)[f"runs/{run_id}"] for run_id in runs]
    assert {tuple(types) for types in lifecycles} == {("queued", "started", "succeeded")}

    out = io.StringIO()
    tail = ["--from-beginning", "--type", "dts.job.paused", "--idle-timeout", "10"]
    call_command("events_tail", *tail, "--max-events", "1", stdout=out)
    (paused,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert (paused["type"], paused["data"]["job_id"]) == ("dts.job.paused", jobs[0].id)


def test_events_tail_refuses_an_unknown_type():
    with pytest.raises(CommandError, match=r"--type: unknown event type .dts\.run\.nope."):
        call_command("events_tail", "--type", "dts.run.nope")


@pytest.mark.serial
def test_events_written_while_kafka_is_stopped_are_all_published_when_it_returns(
    relays, celery_worker_process, tmp_path
):
    job = job_create(team=TeamFactory(), name="through an outage", task_type="dts.noop")
    relay = relays()
    wait_all_published(timeout=30)  # the job's creation
    with restored("kafka"):
        service("kafka", "stop")
        stopped = time.monotonic()
        runs = [run_trigger(job=job).id for _ in range(1000)]
        deadline = time.monotonic() + 55
        while Run.objects.filter(id__in=runs, state=RunState.SUCCEEDED).count() < len(runs):
            assert time.monotonic() < deadline, "runs did not finish while Kafka was stopped"
            time.sleep(0.2)
        outage = f"Kafka at {settings.KAFKA_BOOTSTRAP_SERVERS} unreachable"
        wait_for_log_line(tmp_path / "relay-0.log", outage, relay, timeout=30)
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped)))
        # Nothing published while Kafka was away: every event of the runs is waiting.
        waiting = OutboxEvent.objects.filter(published_at__isnull=True)
        assert waiting.count() == OutboxEvent.objects.count() - 1 >= 2 * len(runs)
        service("kafka", "start")

    assert wait_all_published(timeout=30) <= 30
    expected = OutboxEvent.objects.count()
    received, _ = consume(expected)
    assert {event["id"] for event in received} == {
        str(event_id) for event_id in OutboxEvent.objects.values_list("event_id", flat=True)
    }
    assert received_ids_by_job(received) == outbox_ids_by_job()


def test_a_relay_killed_mid_batch_loses_nothing(relays):
    OutboxEvent.objects.bulk_create(
        event_new(
            type="dts.job.deleted",
            subject=f"jobs/{n % 7 + 1}",
            job_id=n % 7 + 1,
            data={"name": f"n{n}"},
        )
        for n in range(30_000)
    )
    first = relays(batch_size=500)
    deadline = time.monotonic() + 60
    while not OutboxEvent.objects.filter(published_at__isnull=False).exists():
        assert time.monotonic() < deadline, "the relay published nothing"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert OutboxEvent.objects.filter(published_at__isnull=True).exists(), "killed too late"
    relays(batch_size=500)

    wait_all_published(timeout=60)
    # Duplicates (the killed relay's batch in flight, sent again) are dropped by the consumer.
    received, _ = consume(30_000)
    assert len({event["id"] for event in received}) == len(received) == 30_000
    assert received_ids_by_job(received) == outbox_ids_by_job()


def test_two_relays_at_once_keep_each_jobs_events_in_order(relays):
    jobs = [
        job_create(team=TeamFactory(), name=f"pair {n}", task_type="dts.noop") for n in range(4)
    ]
    relays(batch_size=50)
    relays(batch_size=50)

    run_lifecycles(jobs, per_job=40)  # published while being written, by both relays in turn
    wait_all_published(timeout=30)
    expected = OutboxEvent.objects.count()
    received, _ = consume(expected)

    assert len(received) == expected == 4 + 4 * 40 * 2
    # One writer: each job's events were committed in sequence order, and arrive in it.
    assert received_ids_by_job(received) == outbox_ids_by_job()


def test_a_relay_holds_its_turn_but_no_transaction_while_kafka_acknowledges(topic):
    """An open transaction would keep the workers' dead row versions from being pruned."""
    job_create(team=TeamFactory(), name="turn", task_type="dts.noop")
    relay = Relay(producer=producer_new(), batch_size=100, stop=threading.Event())
    other = psycopg2.connect(database_url())
    other.autocommit = True
    seen = {}
    send = relay._send

    def watched_send(events):
        seen["transaction"] = connection.connection.get_transaction_status()
        seen["turn taken by another"] = advisory_lock_try(other)
        return send(events)

    relay._send = watched_send
    try:
        assert relay.publish_batch() == 1
        assert seen == {"transaction": TRANSACTION_STATUS_IDLE, "turn taken by another": False}
        assert advisory_lock_try(other), "the turn was not given back"
    finally:
        other.close()
    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()


def advisory_lock_try(database) -> bool:
    with database.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [TURN_LOCK])
        return bool(cursor.fetchone()[0])


def test_the_relay_reports_its_lag_and_what_it_published(relays):
    OutboxEvent.objects.bulk_create(
        event_new(type="dts.job.deleted", subject="jobs/1", job_id=1, data={"name": "a"})
        for _ in range(10)
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    relays(metrics_port=port)
    wait_all_published(timeout=30)

    deadline = time.monotonic() + 10
    while "dts_events_outbox_lag_seconds 0.0" not in (
        metrics := requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    ):
        assert time.monotonic() < deadline, f"the lag stays above 0:\n{metrics}"
        time.sleep(0.2)
    assert 'dts_events_published_total{type="dts.job.deleted"} 10.0' in metrics
    assert "dts_events_failed_total 0.0" in metrics
    assert "dts_events_outbox_backlog 0.0" in metrics
    promtool_check(metrics)


def test_the_backlog_is_the_batch_read_or_while_batches_are_full_counted():
    OutboxEvent.objects.bulk_create(
        event_new(type="dts.job.deleted", subject="jobs/1", job_id=1, data={}) for _ in range(7)
    )
    events = list(OutboxEvent.objects.order_by("sequence"))
    relay = Relay(producer=mock.Mock(), batch_size=5, stop=threading.Event(), kafka=mock.Mock())

    relay._lag_measure(events[:5])  # a full batch: there may be more
    assert REGISTRY.get_sample_value("dts_events_outbox_backlog") == 7
    relay._lag_measure(events[5:])  # the rest
    assert REGISTRY.get_sample_value("dts_events_outbox_backlog") == 2
    relay._lag_measure([])
    assert REGISTRY.get_sample_value("dts_events_outbox_backlog") == 0


def notified(listening, timeout: float) -> bool:
    readable, _, _ = select.select([listening], [], [], timeout)
    if readable:
        listening.poll()
    found = bool(listening.notifies)
    listening.notifies.clear()
    return found


def test_writers_notify_only_while_a_relay_waits_which_wakes_it_at_once(relays):
    listening = psycopg2.connect(database_url())
    listening.set_session(autocommit=True)
    listening.cursor().execute("LISTEN dts_outbox")
    job = job_create(team=TeamFactory(), name="quiet", task_type="dts.noop", args={})
    assert not notified(listening, 0.5), "no relay waits: the insert should not notify"
    # A relay killed while it waited left its row behind: writers notify until a relay removes it.
    IdleRelay.objects.create(backend_pid=0, since=timezone.now())
    job_update(job=job, data={"description": "stale"})
    assert notified(listening, 2)

    relay = relays()
    wait_all_published(timeout=30)
    deadline = time.monotonic() + 10
    while list(IdleRelay.objects.values_list("backend_pid", flat=True)) in ([], [0]):
        assert time.monotonic() < deadline, "the relay never said it waits"
        time.sleep(0.05)
    time.sleep(0.5)  # past its settling look: asleep for DTS_RELAY_IDLE_SECONDS (5 s)
    notified(listening, 0)

    job_update(job=job, data={"description": "wake up"})
    assert notified(listening, 2)
    assert wait_all_published(timeout=5) < 1, "the relay slept through the notification"
    stop_process(relay)
    assert not IdleRelay.objects.exists()
    listening.close()


def relay_once(relay: Relay) -> None:
    """Run the relay until its first failure's back-off."""
    relay._back_off = relay.stop.set  # type: ignore[method-assign]
    relay.run()


def test_kafka_refusing_the_topic_is_logged_with_its_traceback_not_as_an_outage(
    topic, settings, caplog
):
    settings.DTS_EVENTS_TOPIC_REPLICATION = 3  # the test Kafka is one broker
    relay = Relay(producer=producer_new(), batch_size=100, stop=threading.Event())
    with caplog.at_level(logging.INFO):
        relay_once(relay)

    (failed,) = [r for r in caplog.records if r.getMessage() == "Relay batch failed"]
    assert "INVALID_REPLICATION_FACTOR" in str(failed.exc_info[1])
    assert [r for r in caplog.records if "unreachable" in r.getMessage()] == []
    assert not relay.kafka.outage.down


def test_a_database_error_that_is_a_bug_is_logged_with_its_traceback_not_as_an_outage(caplog):
    relay = Relay(producer=producer_new(), batch_size=100, stop=threading.Event(), topic_ready=True)

    def publish_batch():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO events_outboxevent (sequence) VALUES (NULL)")

    relay.publish_batch = publish_batch  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO):
        relay_once(relay)

    (failed,) = [r for r in caplog.records if r.getMessage() == "Relay batch failed"]
    assert type(failed.exc_info[1]).__name__ == "IntegrityError"
    assert [r for r in caplog.records if "unreachable" in r.getMessage()] == []
    assert not relay.database.down
