import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from apps.runs.models import Run

REPO = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The URL of the database this test session uses, for processes the tests start."""
    db = connection.settings_dict
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def wait_for_log_line(log: Path, text: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            break
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:]
    pytest.fail(f"{process.args} did not log {text!r} within {timeout} s:\n{tail}")


def stop_process(process: subprocess.Popen, timeout: float = 20) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_run(run_id: object, timeout: float = 30) -> Run:
    """Poll the database until the run reaches a terminal state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = Run.objects.get(id=run_id)
        if run.is_terminal:
            return run
        time.sleep(0.1)
    pytest.fail(f"run {run_id} is still {run.state} after {timeout} s")


@pytest.fixture(scope="session")
def celery_worker_process(
    django_db_setup: None,
    django_db_blocker: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[subprocess.Popen]:
    """A real `celery worker` (prefork, 2 processes) on the real Redis and the test database."""
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    with django_db_blocker.unblock():
        url = database_url()
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
    command = [
        *(sys.executable, "-m", "celery", "-A", "workers", "worker", "--loglevel", "INFO"),
        *("--queues", "default", "--concurrency", "2", "--pool", "prefork"),
        *("--without-mingle", "--without-gossip", "--hostname", "test-worker@%h"),
    ]
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        wait_for_log_line(log, "ready.", process, timeout=60)
        yield process
    finally:
        stop_process(process)
