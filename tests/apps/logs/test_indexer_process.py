"""The indexer as a process, with a relay, against the real PostgreSQL, Kafka and Elasticsearch:
lines written through the run log capture become searchable exactly once, when an indexer is
SIGKILLed mid-batch and restarted, and when Elasticsearch is stopped for a minute while 20,000
lines are written. Each test has a topic, a consumer group and an index prefix of its own."""

import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from elasticsearch import Elasticsearch

from apps.logs.documents import LINES
from apps.runs.logs import RunLogCapture
from apps.runs.models import Run
from tests.backing_services.control import restored, service
from tests.conftest import REPO, database_url, stop_process, wait_for_log_line
from tests.elastic import searchable_count
from tests.factories import JobFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

LINES_PER_RUN = 5000  # under DTS_RUN_LOG_MAX_LINES


@pytest.fixture
def start(es: Elasticsearch, settings, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start `manage.py relay_events` or `index_logs` on this test's topic, group and prefix;
    every process started is stopped at the end."""
    settings.DTS_EVENTS_TOPIC = f"dts-test-{uuid.uuid4().hex[:8]}"
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "KAFKA_BOOTSTRAP_SERVERS": settings.KAFKA_BOOTSTRAP_SERVERS,
        "ELASTICSEARCH_URL": settings.ELASTICSEARCH_URL,
        "DTS_EVENTS_TOPIC": settings.DTS_EVENTS_TOPIC,
        "DTS_LOG_INDEX_PREFIX": settings.DTS_LOG_INDEX_PREFIX,
        "DTS_INDEXER_GROUP": f"test-indexer-{uuid.uuid4().hex[:8]}",
        "DTS_INDEXER_MAX_BACKOFF_SECONDS": "2",
        "DTS_RELAY_MAX_BACKOFF_SECONDS": "2",
    }
    started: list[subprocess.Popen] = []

    def start_one(command: str, *arguments: str) -> subprocess.Popen:
        log = tmp_path / f"{command}-{len(started)}.log"
        with log.open("w") as output:
            process = subprocess.Popen(
                [sys.executable, "manage.py", command, "--metrics-port", "0", *arguments],
                cwd=REPO,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        process.log = log  # type: ignore[attr-defined]
        started.append(process)
        ready = "Indexer started" if command == "index_logs" else "Relay started"
        wait_for_log_line(log, ready, process, timeout=60)
        return process

    yield start_one
    for process in started:
        stop_process(process)


def lines_write(runs: int) -> int:
    """LINES_PER_RUN lines of each of `runs` new runs, written as a task's would be."""
    job = JobFactory(name="loader")
    for _ in range(runs):
        run = Run.objects.create(job=job, trigger="api", task_type="dts.noop")
        capture = RunLogCapture(run_id=run.id, job_id=job.id, attempt=1)
        for n in range(LINES_PER_RUN):
            capture.add(level="INFO", logger="load", message=f"row {n} loaded", created=time.time())
        capture.close()
    return runs * LINES_PER_RUN


def wait_for(condition: Callable[[], bool], what: str, timeout: float) -> float:
    """Seconds until `condition` holds; fails after `timeout`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(0.2)
    return time.monotonic() - started


def test_an_indexer_killed_mid_batch_and_restarted_loses_and_doubles_nothing(es, start):
    written = lines_write(4)
    start("relay_events")
    first = start("index_logs", "--batch-size", "5")  # 500 lines a batch
    count = lambda: searchable_count(es, LINES.search_pattern())  # noqa: E731
    wait_for(lambda: count() >= 2000, "the first indexer indexing", timeout=60)

    first.kill()
    first.wait()
    assert count() < written, "the first indexer was done before it was killed"
    start("index_logs", "--batch-size", "5")

    wait_for(lambda: count() == written, f"{written} lines searchable", timeout=60)
    time.sleep(3)  # what a duplicate would need to show
    assert count() == written


@pytest.mark.serial
def test_elasticsearch_stopped_for_a_minute_while_20000_lines_are_written(es, start):
    start("relay_events")
    indexer = start("index_logs")
    count = lambda: searchable_count(es, LINES.search_pattern())  # noqa: E731
    with restored("elasticsearch"):
        service("elasticsearch", "stop")
        stopped_at = time.monotonic()
        written = lines_write(4)
        time.sleep(max(0.0, 60 - (time.monotonic() - stopped_at)))
        service("elasticsearch", "start")

    seconds = wait_for(lambda: count() == written, f"{written} lines searchable", timeout=30)
    time.sleep(2)
    assert count() == written
    log = indexer.log.read_text()
    address = settings.ELASTICSEARCH_URL.removeprefix("http://")
    assert log.count(f"Elasticsearch at {address} unreachable") == 1
    assert "reachable again" in log
    print(f"all {written} lines searchable {seconds:.1f} s after Elasticsearch came back")
