import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from django.conf import settings
from django.db import connection
from elasticsearch import Elasticsearch

from apps.runs.models import Run
from tests.elastic import es_for_test
from tests.processes import REPO, free_port, redis_url, stop_process, wait_for_log_line


def database_url() -> str:
    """The URL of the database this test session uses, for processes the tests start."""
    db = connection.settings_dict
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def wait_for_run(run_id: object, timeout: float = 30) -> Run:
    """Poll the database until the run reaches a terminal state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = Run.objects.get(id=run_id)
        if run.is_terminal:
            return run
        time.sleep(0.1)
    pytest.fail(f"run {run_id} is still {run.state} after {timeout} s")


def start_celery(
    kind: str, *options: str, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """Start `celery -A workers <kind>` on the test database; wait until it is up."""
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers",
        kind,
        "--loglevel",
        "INFO",
        *options,
    ]
    process_env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        **(env or {}),
    }
    since = log.stat().st_size if log.exists() else 0
    with log.open("a") as output:
        process = subprocess.Popen(
            command, cwd=REPO, env=process_env, stdout=output, stderr=subprocess.STDOUT
        )
    ready = "ready." if kind == "worker" else "beat: Starting..."
    wait_for_log_line(log, ready, process, timeout=60, since=since)
    return process


@pytest.fixture(scope="session")
def celery_worker_process(
    django_db_setup, django_db_blocker, tmp_path_factory
) -> Iterator[subprocess.Popen]:
    """A real `celery worker` (prefork, 2 processes) on the real Redis and the test database."""
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with django_db_blocker.unblock():
        process = start_celery(
            "worker",
            *("--queues", "default", "--concurrency", "2", "--pool", "prefork"),
            *("--without-mingle", "--without-gossip", "--hostname", "test-worker@%h"),
            log=log,
        )
    try:
        yield process
    finally:
        stop_process(process)


# The API server's own broker database, which no worker reads: the runs it triggers stay queued.
API_SERVER_BROKER_URL = redis_url(6)


def web_start(
    *, broker_url: str, log: Path, port: int | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """The production ASGI server (uvicorn) on the test database and `broker_url`, at `port` (a
    free one if None; see web_url), with `env` besides; waits until it answers."""
    if port is None:
        port = free_port()
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker_url,
        # The tests that need throttling test it in-process; here it would only get in the way.
        "DTS_API_THROTTLE_USER": "1000000/minute",
        **(env or {}),
    }
    command = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--port", str(port)]
    with log.open("a") as output:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{web_url(process)}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            stop_process(process)
            pytest.fail(f"uvicorn did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def web_url(process: subprocess.Popen) -> str:
    return f"http://127.0.0.1:{process.args[-1]}"


@pytest.fixture(scope="module")
def api_server(django_db_setup, tmp_path_factory):
    """The web server on the test database for this module's tests, with a broker of its own."""
    broker = redis.Redis.from_url(API_SERVER_BROKER_URL)
    broker.flushdb()
    process = web_start(
        broker_url=API_SERVER_BROKER_URL, log=tmp_path_factory.mktemp("api") / "uvicorn.log"
    )
    yield web_url(process)
    stop_process(process)
    broker.flushdb()


@pytest.fixture
def sent_tasks(monkeypatch):
    """The execute-run messages runs_publish sends (each one's task id and keyword arguments),
    sent nowhere."""
    sent: list[dict] = []

    def publish(producer, body, **options) -> None:
        sent.append({"task_id": options["headers"]["id"], "kwargs": body[1]})

    monkeypatch.setattr("kombu.Producer.publish", publish)
    return sent


@pytest.fixture
def broker():
    """The broker's Redis database, emptied before and after the test."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def es(settings) -> Iterator[Elasticsearch]:
    """An Elasticsearch client; this test's indices have a prefix of their own (tests.elastic)."""
    yield from es_for_test(settings)
