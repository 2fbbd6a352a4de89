"""Each long-running process starts while the backing services it needs are down, says so (log,
/readyz, metrics), keeps running, and does its work once they return (docs/runs.md, "When a
backing service is down"). An error that is no outage (a bug) is not reported as one.

The services are private instances (tests.backing_services.control), started by the same
platform/local scripts in folders and on ports of their own, so that stopping them disturbs no
other test: one PostgreSQL with dts's schema for the module, and a Redis or Kafka per test.
"""

import contextlib
import copy
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import psutil
import pytest
import redis
from confluent_kafka import Consumer
from django.db import connections
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from apps.jobs.services import job_create
from apps.runs.models import Run
from apps.runs.services.build import run_trigger
from apps.runs.states import RunState
from apps.schedules.services import schedule_create
from dispatch.celery import app
from tests.backing_services.control import LocalService, free_port, private_service
from tests.conftest import REPO, stop_process, wait_for_log_line, wait_for_run
from tests.factories import TeamFactory
from workers.heartbeat import start_heartbeat, stop_heartbeat
from workers.scheduler import DatabaseScheduler

pytestmark = pytest.mark.integration

FAST = {
    "DJANGO_SETTINGS_MODULE": "config.settings.test",
    "DTS_WORKER_HEARTBEAT_SECONDS": "1",
    "DTS_SCHEDULER_MAX_SLEEP_SECONDS": "1",
    "DTS_QUEUED_CHECK_AFTER_SECONDS": "1",
    "DTS_BROKER_CHECK_EVERY_SECONDS": "1",
    "DTS_RELAY_MAX_BACKOFF_SECONDS": "1",
    "DTS_RELAY_IDLE_SECONDS": "1",
}


def database_url(postgres: LocalService) -> str:
    return f"postgres://dts:dts@127.0.0.1:{postgres.port}/dts"


def redis_url(service: LocalService, db: int = 0) -> str:
    return f"redis://127.0.0.1:{service.port}/{db}"


@pytest.fixture(scope="module")
def postgres_cluster() -> Iterator[LocalService]:
    """A private PostgreSQL with dts's schema (about 10 s to create and migrate)."""
    with private_service("postgres", start=True) as postgres:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
            cwd=REPO,
            env=os.environ | FAST | {"DATABASE_URL": database_url(postgres)},
            check=True,
            timeout=120,
        )
        yield postgres


@pytest.fixture
def postgres(postgres_cluster: LocalService) -> LocalService:
    """The private PostgreSQL, stopped: the test starts it."""
    postgres_cluster.stop()
    return postgres_cluster


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., tuple[subprocess.Popen, Path]]]:
    """Start a dts process (its output in a log file) on the given environment; everything
    started is stopped at the end, its children too."""
    started: list[subprocess.Popen] = []

    def start_process(
        name: str, *command: str, env: dict[str, str]
    ) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"{name}.log"
        with log.open("a") as output:
            process = subprocess.Popen(
                [sys.executable, *command],
                cwd=REPO,
                env=os.environ | FAST | env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        return process, log

    yield start_process
    for process in started:
        children = (
            psutil.Process(process.pid).children(recursive=True) if process.poll() is None else []
        )
        stop_process(process, timeout=15)
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


@contextlib.contextmanager
def on_database(postgres: LocalService, django_db_blocker: Any) -> Iterator[None]:
    """This test's own queries and services go to the private PostgreSQL inside the block."""
    original = connections["default"]
    settings_dict = copy.deepcopy(original.settings_dict)
    settings_dict.update(NAME="dts", PORT=str(postgres.port))
    replacement = original.__class__(settings_dict, alias="default")
    connections["default"] = replacement
    try:
        with django_db_blocker.unblock():
            yield
    finally:
        replacement.close()
        connections["default"] = original


@contextlib.contextmanager
def publishing_to(broker_url: str) -> Iterator[None]:
    """Celery messages this test process publishes go to `broker_url` inside the block."""
    with app.connection_for_write(broker_url) as broker:
        producer = app.amqp.Producer(broker)
        # A producer given to it is used as it is, as Celery's own does (dispatch.messages).
        with mock.patch.object(
            app,
            "producer_or_acquire",
            side_effect=lambda given=None: contextlib.nullcontext(given or producer),
        ):
            yield


def eventually(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except Exception as problem:  # the service may still be coming up
            result, last = None, problem
        else:
            last = None
        if result:
            return result
        assert time.monotonic() < deadline, f"{what}: not after {timeout} s (last error: {last})"
        time.sleep(0.3)


def readyz(base_url: str) -> tuple[int, dict[str, bool]]:
    answer = httpx.get(f"{base_url}/readyz", timeout=10)
    return answer.status_code, answer.json()["checks"]


def test_the_web_process_answers_while_postgresql_and_redis_are_down_and_is_ready_when_they_return(
    postgres, start
):
    with private_service("redis") as broker:
        port = free_port()
        web, log = start(
            "web",
            *("-m", "uvicorn", "config.asgi:application", "--port", str(port)),
            env={
                "DATABASE_URL": database_url(postgres),
                "CELERY_BROKER_URL": redis_url(broker, 0),
                "DTS_CACHE_URL": redis_url(broker, 1),
                "DTS_LIVE_REDIS_URL": redis_url(broker, 2),
            },
        )
        base_url = f"http://127.0.0.1:{port}"
        eventually(lambda: httpx.get(f"{base_url}/healthz").status_code == 200, 30, "web up")

        probes = [readyz(base_url) for _ in range(5)]
        down = {"database": False, "broker": False, "cache": False, "live": False}
        assert probes == [(503, down)] * 5

        postgres.start()
        eventually(lambda: readyz(base_url) == (503, down | {"database": True}), 20, "db")
        broker.start()
        eventually(lambda: readyz(base_url)[0] == 200, 20, "ready")

        assert web.poll() is None
        output = log.read_text()
        # Said once per outage however often it was probed (the broker, the cache and the live
        # streams share one Redis server here: one outage), and its end.
        assert outage_starts(output) == [
            f"PostgreSQL at 127.0.0.1:{postgres.port}",
            f"Redis at 127.0.0.1:{broker.port}",
        ], output
        assert f"PostgreSQL at 127.0.0.1:{postgres.port} reachable again" in output
        assert f"Redis at 127.0.0.1:{broker.port} reachable again" in output
        assert "Service Unavailable: /readyz" not in output  # no error line per probe


def test_a_worker_retries_the_broker_for_as_long_as_it_is_down():
    # Celery's default gives up after 100 attempts (about 50 minutes): the worker would exit.
    assert app.conf.broker_connection_retry_on_startup is True
    assert app.conf.broker_connection_retry is True
    assert app.conf.broker_connection_max_retries is None


def test_a_worker_waits_out_redis_and_postgresql_then_runs_a_run(
    postgres, start, django_db_blocker
):
    metrics_port = free_port()
    with private_service("redis") as broker:
        worker, log = start(
            "worker",
            *("-m", "celery", "-A", "workers", "worker", "--loglevel", "INFO"),
            *("--queues", "default", "--concurrency", "1", "--pool", "prefork"),
            *("--without-mingle", "--without-gossip", "--hostname", "outage@%h"),
            env={
                "DATABASE_URL": database_url(postgres),
                "CELERY_BROKER_URL": redis_url(broker),
                "DTS_WORKER_METRICS_PORT": str(metrics_port),
            },
        )
        wait_for_log_line(log, "Cannot connect to redis", worker, timeout=60)
        assert "PostgreSQL" not in dependency_up(metrics_port)  # served; the heartbeat not yet

        broker.start()
        wait_for_log_line(log, "ready.", worker, timeout=60)
        database = f"PostgreSQL at 127.0.0.1:{postgres.port}"
        wait_for_log_line(log, f"{database} unreachable", worker, timeout=30)  # its heartbeat
        assert dependency_up(metrics_port)["PostgreSQL"] == 0.0
        postgres.start()
        wait_for_log_line(log, f"{database} reachable again", worker, timeout=30)
        eventually(lambda: dependency_up(metrics_port)["PostgreSQL"] == 1.0, 5, "up again")

        with on_database(postgres, django_db_blocker), publishing_to(redis_url(broker)):
            job = job_create(
                team=TeamFactory(), name=f"outage-{uuid.uuid4().hex[:8]}", task_type="dts.noop"
            )
            run = wait_for_run(run_trigger(job=job).id, timeout=60)
            assert run.state == RunState.SUCCEEDED

        assert worker.poll() is None
        assert outage_starts(log.read_text()) == [database]


def test_a_scheduler_waits_out_postgresql_and_redis_then_fires_a_due_schedule(
    postgres, start, django_db_blocker, tmp_path
):
    metrics_port = free_port()
    with private_service("redis") as broker:
        scheduler, log = start(
            "scheduler",
            *("-m", "celery", "-A", "workers", "beat", "--loglevel", "INFO"),
            *("--scheduler", "workers.scheduler:DatabaseScheduler"),
            *("--pidfile", str(tmp_path / "beat.pid")),
            env={
                "DATABASE_URL": database_url(postgres),
                "CELERY_BROKER_URL": redis_url(broker),
                "DTS_SCHEDULER_METRICS_PORT": str(metrics_port),
            },
        )
        database = f"PostgreSQL at 127.0.0.1:{postgres.port}"
        wait_for_log_line(log, f"{database} unreachable", scheduler, timeout=60)
        time.sleep(3)  # ticks that fail, logged no more
        assert dependency_up(metrics_port)["PostgreSQL"] == 0.0

        postgres.start()
        wait_for_log_line(log, f"{database} reachable again", scheduler, timeout=30)
        eventually(lambda: dependency_up(metrics_port)["PostgreSQL"] == 1.0, 5, "up again")
        with on_database(postgres, django_db_blocker):
            job = job_create(
                team=TeamFactory(), name=f"outage-{uuid.uuid4().hex[:8]}", task_type="dts.noop"
            )
            schedule = schedule_create(
                job=job, kind="once", once_at=timezone.now() + timedelta(seconds=1)
            )
            run = eventually(
                lambda: Run.objects.filter(schedule=schedule).first(), 30, "the schedule fired"
            )
            # Fired while the broker is down: queued, then published once it returns.
            redis_name = f"Redis at 127.0.0.1:{broker.port}"
            wait_for_log_line(log, f"{redis_name} unreachable", scheduler, timeout=30)
            assert dependency_up(metrics_port)["Redis"] == 0.0
            broker.start()
            eventually(lambda: str(run.id) in waiting_task_ids(broker), 30, "published")
            assert Run.objects.filter(schedule=schedule).count() == 1

        wait_for_log_line(log, f"{redis_name} reachable again", scheduler, timeout=10)
        eventually(lambda: dependency_up(metrics_port)["Redis"] == 1.0, 5, "Redis up again")
        assert scheduler.poll() is None
        output = log.read_text()
        assert outage_starts(output) == [database, redis_name], output
        during = output[
            output.index(f"{database} unreachable") : output.index(f"{database} reachable")
        ]
        assert "Traceback" not in during, during  # not one per failed tick


def waiting_task_ids(broker: LocalService) -> set[str]:
    """The ids of the Celery messages waiting in the broker's default queue (any priority)."""
    client = redis.Redis.from_url(redis_url(broker))
    ids = set()
    for key in client.scan_iter("default*"):
        if client.type(key) == b"list":
            ids.update(json.loads(raw)["headers"]["id"] for raw in client.lrange(key, 0, -1))
    return ids


def test_a_relay_waits_out_kafka_and_postgresql_then_publishes_the_outbox(
    postgres, start, django_db_blocker
):
    topic = f"dts-outage-{uuid.uuid4().hex[:8]}"
    metrics_port = free_port()
    with private_service("kafka") as kafka:
        bootstrap = f"127.0.0.1:{kafka.port}"
        relay, log = start(
            "relay",
            *("manage.py", "relay_events", "--metrics-port", str(metrics_port)),
            env={
                "DATABASE_URL": database_url(postgres),
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "DTS_EVENTS_TOPIC": topic,
            },
        )
        wait_for_log_line(log, f"Kafka at {bootstrap} unreachable", relay, timeout=60)
        assert dependency_up(metrics_port) == {"Kafka": 0.0, "PostgreSQL": 1.0}
        time.sleep(5)  # librdkafka fails to connect ~20 times a second meanwhile
        assert refused_lines(log) <= 3, log.read_text()[-3000:]

        kafka.start()
        wait_for_log_line(log, f"Kafka at {bootstrap} reachable again", relay, timeout=60)
        database = f"PostgreSQL at 127.0.0.1:{postgres.port}"
        wait_for_log_line(log, f"{database} unreachable", relay, timeout=30)
        assert dependency_up(metrics_port) == {"Kafka": 1.0, "PostgreSQL": 0.0}
        postgres.start()
        wait_for_log_line(log, f"{database} reachable again", relay, timeout=30)

        with on_database(postgres, django_db_blocker):
            job = job_create(
                team=TeamFactory(), name=f"outage-{uuid.uuid4().hex[:8]}", task_type="dts.noop"
            )
        # The events the module's other tests left in the outbox go out too.
        assert str(job.id).encode() in keys_until(bootstrap, topic, str(job.id).encode(), 60)
        assert dependency_up(metrics_port) == {"Kafka": 1.0, "PostgreSQL": 1.0}
        assert relay.poll() is None
        # Once per outage (reminders, "still unreachable", are not counted).
        assert outage_starts(log.read_text()) == [f"Kafka at {bootstrap}", database]


def outage_starts(output: str) -> list[str]:
    """The services whose outage start the log says ("<service> unreachable: <reason>; retrying
    until it returns"), in order."""
    return [
        found.group(1)
        for found in re.finditer(
            r"(?m) ([^ ]+ at [^ ]+) unreachable: .*; retrying until it returns$", output
        )
    ]


def dependency_up(metrics_port: int) -> dict[str, float]:
    """A process's dts_dependency_up gauge, per dependency."""
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    return {
        sample.labels["dependency"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "dts_dependency_up"
        for sample in family.samples
    }


def refused_lines(log: Path) -> int:
    """Lines about a refused connection, librdkafka's own (on stderr) or through logging."""
    return sum("Connection refused" in line for line in log.read_text().splitlines())


def keys_until(bootstrap: str, topic: str, wanted: bytes, timeout: float) -> list[bytes]:
    """The keys of the topic's messages, read from its start until `wanted` comes (or not)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"outage-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
        }
    )
    keys: list[bytes] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while wanted not in keys and time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is not None and message.error() is None:
                keys.append(message.key())
        return keys
    finally:
        consumer.close()


def bug_in_sql() -> None:
    """A statement PostgreSQL refuses: a bug, not an outage (ProgrammingError)."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]


@pytest.mark.django_db(transaction=True)
def test_a_scheduler_tick_failing_on_a_bug_logs_its_traceback_not_an_outage(caplog):
    scheduler = DatabaseScheduler(app=app, lazy=True)
    with (
        mock.patch("workers.scheduler.schedules_fire_due", side_effect=lambda **_: bug_in_sql()),
        mock.patch("workers.scheduler.time.sleep"),
        caplog.at_level(logging.INFO),
    ):
        assert scheduler.tick() == 0
    scheduler.close()

    (failed,) = [r for r in caplog.records if r.getMessage() == "Scheduler tick failed; retrying"]
    assert failed.exc_info is not None
    assert type(failed.exc_info[1]).__name__ == "ProgrammingError"
    assert "no_such_table" in caplog.text  # the traceback, with the statement's error
    assert outage_lines(caplog) == []
    assert not scheduler.database.down


@pytest.mark.django_db(transaction=True)
def test_a_heartbeat_failing_on_a_bug_logs_its_traceback_not_an_outage(caplog, settings):
    settings.DTS_WORKER_HEARTBEAT_SECONDS = 0.05
    worker = mock.Mock()
    worker.controller.hostname = "h" * 300  # longer than the column: DataError
    worker.controller.concurrency = 1
    worker.task_consumer.queues = []
    worker.hostname = worker.controller.hostname
    with caplog.at_level(logging.INFO):
        start_heartbeat(sender=worker)
        try:
            eventually(
                lambda: [r for r in caplog.records if r.getMessage() == "Worker heartbeat failed"],
                10,
                "the heartbeat's failure logged",
            )
        finally:
            stop_heartbeat(sender=worker)
            for thread in threading.enumerate():
                if thread.name == "dts-heartbeat":
                    thread.join(5)

    failed = [r for r in caplog.records if r.getMessage() == "Worker heartbeat failed"]
    assert type(failed[0].exc_info[1]).__name__ == "DataError"
    assert outage_lines(caplog) == []
