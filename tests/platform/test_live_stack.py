"""The test Prometheus of `make services` scrapes a real stack (issue 19, item 5): web, worker,
scheduler, relay and log indexer as real processes on the real PostgreSQL, Redis, Kafka and
Elasticsearch (a database of their own, Redis databases 13 and 14, a topic, a consumer group and
an index prefix of their own), listed in Prometheus's target files
(file-based discovery, platform/local/prometheus.yml) with a `stack` label of this test run. It
runs jobs (triggered through the API, and one scheduled every few seconds), then asks
Prometheus's HTTP API until every target is up and the run counters moved, checks the project's
rules are loaded, and runs every dashboard query: each is accepted, and those a live stack must
fill (DATA_PANELS) return samples of this stack.

Prometheus is found from DTS_PROMETHEUS_PORT (make services' by default), so it runs against a
private instance as well (`DTS_SERVICES_DIR=/tmp/x DTS_PROMETHEUS_PORT=59091
platform/local/prometheus.sh start`); the target files go to the folder that instance says it
reads, which is another clone's when that clone's Prometheus serves the port."""

import contextlib
import json
import math
import os
import re
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg2
import pytest
import redis
import requests
import yaml
from django.conf import settings
from django.db import connection

from tests.platform.promql import metric_names, recorded_metrics, rule_groups
from tests.platform.test_dashboards import dashboard_queries, promql
from tests.processes import (
    REPO,
    StandaloneApi,
    free_port,
    redis_url,
    stop_process,
    wait_for_log_line,
)

pytestmark = pytest.mark.integration

PROMETHEUS = f"http://127.0.0.1:{os.environ.get('DTS_PROMETHEUS_PORT', '59090')}"
JOBS = ("dts-web", "dts-worker", "dts-scheduler", "dts-relay", "dts-indexer")
STACK = f"test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
REDIS_DATABASES = (13, 14)  # the broker's, and the cache's and live messages'
SCHEDULE_EVERY_SECONDS = 2
# The panels a live stack with runs, fires and API requests must fill: each of their queries
# returns a sample (not NaN) of this stack. The job dashboard's and "Jobs by health" read recording
# rules, which keep no `stack` label: any stack's series count there.
DATA_PANELS = {
    ("dts-overview", "Runs finished per second by outcome"),
    ("dts-overview", "Success ratio"),
    ("dts-overview", "Runs started (last hour)"),
    ("dts-overview", "Queue wait (queued to started)"),
    ("dts-overview", "Fire lateness (due to published)"),
    ("dts-overview", "Workers up"),
    ("dts-overview", "Schedulers up"),
    ("dts-overview", "Runs executing by queue"),
    ("dts-overview", "Backlog: messages waiting by queue"),
    ("dts-overview", "Jobs by health"),
    ("dts-scheduler", "Seconds since last tick by replica"),
    ("dts-scheduler", "Tick duration"),
    ("dts-scheduler", "Fires per second by queue"),
    ("dts-scheduler", "Fire lateness"),
    ("dts-scheduler", "Due schedules not yet fired"),
    ("dts-scheduler", "Broker: messages by queue"),
    ("dts-scheduler", "Broker: oldest message age by queue"),
    ("dts-events", "Events published per second by type"),
    ("dts-events", "Outbox lag"),
    ("dts-events", "Outbox backlog"),
    ("dts-events", "Backing services reachable"),
    ("dts-events", "Documents indexed per second"),
    ("dts-events", "Indexer lag"),
    ("dts-web", "Requests per second by view"),
    ("dts-web", "Responses per second by status"),
    ("dts-web", "API latency"),
    ("dts-job", "Health"),
    ("dts-job", "Next fire in"),
}
FAST = {
    "DTS_WORKER_HEARTBEAT_SECONDS": "1",
    "DTS_SCHEDULER_MAX_SLEEP_SECONDS": "1",
    "DTS_RELAY_IDLE_SECONDS": "1",
    "DTS_API_THROTTLE_USER": "1000000/minute",
}
# The team, jobs and schedule of the stack, and a superuser for the API (run by manage.py shell).
SEED = textwrap.dedent(
    f"""
    from django.contrib.auth import get_user_model
    from apps.accounts.services import team_create
    from apps.jobs.services import job_create
    from apps.schedules.services import schedule_create
    get_user_model().objects.create_superuser("admin", "admin@example.com", "admin")
    team = team_create(name="data")
    nightly = job_create(team=team, name="nightly-report", task_type="dts.noop")
    job_create(team=team, name="broken", task_type="dts.fail")
    schedule_create(job=nightly, kind="interval", interval_seconds={SCHEDULE_EVERY_SECONDS})
    """
)


def query(expression: str) -> dict[str, Any]:
    """Prometheus's answer to an instant query (its JSON, whatever its status)."""
    response = requests.get(f"{PROMETHEUS}/api/v1/query", params={"query": expression}, timeout=10)
    return response.json()


def values(expression: str) -> list[float]:
    answer = query(expression)
    assert answer["status"] == "success", (expression, answer)
    return [float(sample["value"][1]) for sample in answer["data"]["result"]]


def wait_for(condition: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.5)


def scoped(expression: str) -> str:
    """The expression with every metric it selects limited to this stack's series (recording
    rules' left as they are: they keep no `stack` label)."""
    recorded = recorded_metrics()
    for name in sorted(metric_names(expression) - recorded, key=len, reverse=True):
        expression = re.sub(
            rf"(?<![\w:]){re.escape(name)}(?![\w:])(\{{)?",
            lambda found, name=name: (
                f'{name}{{stack="{STACK}", ' if found[1] else f'{name}{{stack="{STACK}"}}'
            ),
            expression,
        )
    return expression


def targets_write(targets: Path, job: str, port: int) -> None:
    """List the process in Prometheus's target files (a rename: never read half written)."""
    target = targets / job / f"{STACK}.json"
    written = target.with_suffix(".tmp")
    written.write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"], "labels": {"stack": STACK}}]))
    written.rename(target)


@pytest.fixture
def database() -> Iterator[str]:
    """A database of this test (dts_stack_<pid>) with dts's schema; its URL."""
    db = connection.settings_dict
    name = f"dts_stack_{os.getpid()}"
    server = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}"

    def admin(statement: str) -> None:
        with contextlib.closing(
            psycopg2.connect(f"{server}/postgres", connect_timeout=10)
        ) as postgres:
            postgres.autocommit = True
            postgres.cursor().execute(statement)

    admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin(f"CREATE DATABASE {name}")
    try:
        yield f"{server}/{name}"
    finally:
        admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def redis_databases() -> Iterator[list[str]]:
    """The URLs of this lane's Redis databases 13 and 14, emptied before and after."""
    urls = [redis_url(number) for number in REDIS_DATABASES]
    clients = [redis.Redis.from_url(url) for url in urls]
    for client in clients:
        client.flushdb()
    yield urls
    for client in clients:
        client.flushdb()


@pytest.fixture
def prometheus() -> Path:
    """The folder of target files the Prometheus of DTS_PROMETHEUS_PORT reads: one per dts job."""
    loaded = yaml.safe_load(
        requests.get(f"{PROMETHEUS}/api/v1/status/config", timeout=10).json()["data"]["yaml"]
    )
    files = {
        scrape["job_name"]: [
            pattern for source in scrape.get("file_sd_configs", []) for pattern in source["files"]
        ]
        for scrape in loaded["scrape_configs"]
    }
    assert all(files.get(job) for job in JOBS), (
        f"the Prometheus at {PROMETHEUS} discovers no targets of {JOBS} from files: it runs an"
        " older configuration (platform/local/prometheus.sh start, make services, reloads it)"
    )
    targets = Path(files["dts-worker"][0]).parent.parent
    assert all((targets / job).is_dir() for job in JOBS), f"{targets} has no folder per dts job"
    return targets


@pytest.fixture
def stack(prometheus, database, redis_databases, tmp_path) -> Iterator[dict[str, int]]:
    """Web, worker, scheduler, relay and indexer on the test's database, Redis databases and topic,
    listed in Prometheus's target files; yields each job's metrics port. Everything is stopped
    and the target files removed at the end."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "CELERY_", "DTS_", "DATABASE_"))
    } | FAST
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database,
        "CELERY_BROKER_URL": redis_databases[0],
        "DTS_CACHE_URL": redis_databases[1],
        "DTS_LIVE_REDIS_URL": redis_databases[1],
        "KAFKA_BOOTSTRAP_SERVERS": settings.KAFKA_BOOTSTRAP_SERVERS,
        "DTS_EVENTS_TOPIC": f"dts-stack-{STACK}",
        "DTS_EVENTS_TOPIC_PARTITIONS": "1",
        "ELASTICSEARCH_URL": settings.ELASTICSEARCH_URL,
        "DTS_LOG_INDEX_PREFIX": STACK,
        "DTS_LOG_INDEX_REPLICAS": "0",
        "DTS_INDEXER_GROUP": STACK,
    }
    for command in (["migrate", "--verbosity", "0"], ["shell", "--command", SEED]):
        subprocess.run(
            [sys.executable, "manage.py", *command], cwd=REPO, env=env, check=True, timeout=120
        )
    ports = {job: free_port() for job in JOBS}
    celery = [sys.executable, "-m", "celery", "-A", "workers"]
    commands = {
        "dts-web": [
            *(sys.executable, "-m", "uvicorn", "config.asgi:application"),
            *("--port", str(ports["dts-web"])),
        ],
        "dts-worker": [
            *(*celery, "worker", "--loglevel", "INFO", "--queues", "default"),
            *("--concurrency", "2", "--pool", "prefork", "--without-mingle", "--without-gossip"),
            *("--hostname", f"{STACK}@%h"),
        ],
        "dts-scheduler": [
            *(*celery, "beat", "--loglevel", "INFO"),
            *("--scheduler", "workers.scheduler:DatabaseScheduler"),
            *("--pidfile", str(tmp_path / "beat.pid")),
        ],
        "dts-relay": [
            *(sys.executable, "manage.py", "relay_events"),
            *("--metrics-port", str(ports["dts-relay"])),
        ],
        "dts-indexer": [
            *(sys.executable, "manage.py", "index_logs"),
            *("--metrics-port", str(ports["dts-indexer"])),
        ],
    }
    ready = {
        "dts-web": "Uvicorn running",
        "dts-worker": "ready.",
        "dts-scheduler": "beat: Starting...",
        "dts-relay": "Relay started",
        "dts-indexer": "Indexer started",
    }
    started: dict[str, subprocess.Popen] = {}
    try:
        for job, command in commands.items():
            with (tmp_path / f"{job}.log").open("w") as output:
                started[job] = subprocess.Popen(
                    command,
                    cwd=REPO,
                    env=env
                    | {
                        "DTS_WORKER_METRICS_PORT": str(ports["dts-worker"]),
                        "DTS_SCHEDULER_METRICS_PORT": str(ports["dts-scheduler"]),
                    },
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
        for job, process in started.items():
            wait_for_log_line(tmp_path / f"{job}.log", ready[job], process, timeout=60)
            targets_write(prometheus, job, ports[job])
        yield ports
    finally:
        for job in JOBS:
            (prometheus / job / f"{STACK}.json").unlink(missing_ok=True)
        requests.delete(f"{settings.ELASTICSEARCH_URL}/{STACK}-*", timeout=30)
        for kind in ("logs", "runs"):
            requests.delete(
                f"{settings.ELASTICSEARCH_URL}/_index_template/{STACK}-{kind}-v*", timeout=30
            )
        for process in started.values():
            children = (
                psutil.Process(process.pid).children(recursive=True)
                if process.poll() is None
                else []
            )
            stop_process(process, timeout=15)
            for child in children:
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()


def test_prometheus_scrapes_a_live_stack_and_answers_every_dashboard_query(stack):
    started = time.monotonic()
    selector = f'stack="{STACK}"'

    # Every process is a target of its job, and up.
    def all_up() -> bool:
        answer = query(f"up{{{selector}}}")["data"]["result"]
        return sorted((s["metric"]["job"], s["value"][1]) for s in answer) == sorted(
            (job, "1") for job in JOBS
        )

    wait_for(all_up, "every target up", timeout=30)

    # Runs: triggered through the API (a success and a failure, twice over a scrape, so that
    # the counters' rates move), and the scheduled job fires every SCHEDULE_EVERY_SECONDS.
    api = StandaloneApi(f"http://127.0.0.1:{stack['dts-web']}")
    jobs = [api.job_id("nightly-report"), api.job_id("broken")]
    triggered = [api.trigger(job) for job in jobs]
    time.sleep(6)
    triggered += [api.trigger(job) for job in jobs]
    for run in triggered:
        api.wait_for_state(run, {"succeeded", "failed"}, timeout=30)
    finished = f"sum by (outcome) (dts_runs_finished_total{{{selector}}})"
    wait_for(
        lambda: (
            len(values(f"{finished} > 0")) == 2
            and values(f'sum(dts_runs_finished_total{{{selector}, outcome="failed"}})') == [2.0]
            and sum(values(f"dts_scheduler_fires_total{{{selector}}}")) >= 2
        ),
        "the run counters moved (succeeded and failed) and the schedule fired",
        timeout=30,
    )

    # The project's rules are loaded: every group of platform/prometheus/rules, rule by rule.
    loaded = requests.get(f"{PROMETHEUS}/api/v1/rules", timeout=10).json()["data"]["groups"]
    by_name = {group["name"]: [rule["name"] for rule in group["rules"]] for group in loaded}
    for group in rule_groups():
        assert group["name"] in by_name, f"rule group {group['name']} is not loaded"
        expected = [rule.get("record") or rule.get("alert") for rule in group["rules"]]
        assert by_name[group["name"]] == expected, f"group {group['name']} is not the file's"

    # Every dashboard query is accepted; the panels of DATA_PANELS have this stack's samples.
    queries = list(dashboard_queries())
    for uid, title, expression in queries:
        answer = query(promql(expression))
        assert answer["status"] == "success", (uid, title, expression, answer)
    wanted = [
        (uid, title, scoped(promql(e))) for uid, title, e in queries if (uid, title) in DATA_PANELS
    ]
    assert {(uid, title) for uid, title, _ in wanted} == DATA_PANELS

    def empty() -> list[tuple[str, str, str]]:
        return [
            (uid, title, expression)
            for uid, title, expression in wanted
            if not [value for value in values(expression) if not math.isnan(value)]
        ]

    missing: list[tuple[str, str, str]] = []

    def filled() -> bool:
        missing[:] = empty()
        return not missing

    with contextlib.suppress(AssertionError):
        wait_for(filled, "every data panel filled", timeout=30)
    assert not missing, "panels without data:\n" + "\n".join(map(str, missing))
    for title in ("Workers up", "Schedulers up"):
        (expression,) = [e for uid, t, e in wanted if t == title]
        assert values(expression) == [1.0], title
    assert time.monotonic() - started < 90
