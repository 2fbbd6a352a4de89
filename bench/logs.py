"""Log search: the indexer's throughput against the client's bulk helper, the lag from a line
written to searchable, search latency over millions of lines against PostgreSQL, and what
indexing costs the workers.

    python -m bench.logs [--lines 500000] [--rounds 3] [--lag-rate 5000] [--lag-seconds 30]
                         [--search-lines 5000000] [--jobs 1000] [--teams 20] [--query-rate 10]
                         [--query-seconds 30] [--burst-runs 1000] [--burst-lines 20]

- throughput: `--lines` lines (runs of 1,000) in PostgreSQL with their `dts.run.logged` events
  published to Kafka beforehand (by a relay, untimed); an indexer process (`manage.py
  index_logs`, a new consumer group) is timed from its start ("Indexer started") until every line
  is searchable (`_count`). Its limit: the same documents, read from PostgreSQL beforehand, sent
  by the client's `streaming_bulk` straight into the same Elasticsearch, timed until searchable.
  Rounds alternate the two; medians. Goal: at least 0.8x the limit, and 10,000 lines/s;
- lag: a relay and an indexer running, this process writes `--lag-rate` lines/s through the run
  log capture (batches of 100 lines, one per run per tick, as a task's would be) for
  `--lag-seconds`; a thread asks Elasticsearch every 100 ms for each run's highest sequence
  searchable; a batch's lag is from its commit to the first answer that holds it. Goal: p99 at
  most 2 s at 5,000 lines/s;
- search: `--search-lines` lines of `--jobs` jobs of `--teams` teams, written straight into
  PostgreSQL (COPY) and Elasticsearch (bulk); queries of one word, each as a member of one team
  (team-scoped), with highlights, newest 20 first, through apps.logs.search as the API runs it,
  paced at `--query-rate` per second for `--query-seconds`: p50 and p99. The peer: the same
  searches on PostgreSQL (its fallback: ILIKE, with a pg_trgm GIN index on the message), the same
  way. Goal: p99 at most 150 ms;
- cost on the workers: bursts of `--burst-runs` runs of `dts.log` (`--burst-lines` lines each) by
  a prefork worker (bench.execution's burst), with the indexer and the relay running and with the
  relay only, in alternating rounds: runs/s and the machine's CPU per run (the indexer shares the
  machine's two cores, so its CPU counts).

Needs `make services`. Its own database (dts_bench_logs), Redis database 12, a topic and index
prefixes of its own (removed at the end). Writes bench/results/logs.json and logs.md.
"""

import argparse
import io
import itertools
import json
import os
import platform
import random
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.databases import database_recreate, database_url
from bench.execution import (
    LOGS,
    RESULTS,
    bench_dts,
    child_environ,
    percentile,
    start,
    stop,
)

DATABASE = "dts_bench_logs"
BROKER = "redis://127.0.0.1:56379/12"
ELASTICSEARCH = "http://127.0.0.1:59200"
RUN_ID = uuid.uuid4().hex[:8]
PREFIX = f"bench-logs-{RUN_ID}"
LINES_PER_RUN = 1000
BATCH_LINES = 100  # a run log capture's flush
GOAL_RATIO = 0.8
GOAL_LINES_PER_SECOND = 10_000
GOAL_LAG_P99_SECONDS = 2.0
GOAL_SEARCH_P99_MS = 150.0
DEADLINE_SECONDS = 600
# The search corpus's words: a few frequent, many rare (Zipf-like), as in real logs.
VOCABULARY = [
    f"{consonant}{vowel}{ending}"
    for consonant in "bdfgklmnprstvz"
    for vowel in ("a", "e", "i", "o", "u", "ai", "ou")
    for ending in ("n", "r", "s", "t", "x", "ck", "nd", "rt")
]


def environment(prefix: str) -> dict[str, str]:
    """What the processes of this bench run with: its database, broker, topic and `prefix`."""
    return child_environ() | {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(DATABASE),
        "CELERY_BROKER_URL": BROKER,
        "ELASTICSEARCH_URL": ELASTICSEARCH,
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:59092",
        # A topic per prefix: an indexer of one part reads none of another's events.
        "DTS_EVENTS_TOPIC": f"dts-{prefix}",
        "DTS_LOG_INDEX_PREFIX": prefix,
        "DTS_LOG_INDEX_REPLICAS": "0",
        "DTS_LOG_LEVEL": "WARNING",
    }


def wait_for(condition: Callable[[], bool], what: str, every: float = 0.2) -> float:
    """The time (time.monotonic) at which `condition` first held."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {DEADLINE_SECONDS} s")
        time.sleep(every)
    return time.monotonic()


def manage(command: str, *, prefix: str, ready: str, topic_of: str = "") -> Any:
    """`manage.py command` with this bench's environment for `prefix` (reading the topic of
    `topic_of`'s if given), in a new consumer group; returns once it logged `ready`."""
    env = environment(prefix) | {"DTS_INDEXER_GROUP": f"bench-{uuid.uuid4().hex[:8]}"}
    if topic_of:
        env["DTS_EVENTS_TOPIC"] = environment(topic_of)["DTS_EVENTS_TOPIC"]
    env["DTS_LOG_LEVEL"] = "INFO"
    name = f"bench-logs-{command}.log"
    process = start(
        [sys.executable, "manage.py", command, "--metrics-port", "0"], env=env, log_name=name
    )
    wait_for(lambda: ready in (LOGS / name).read_text(errors="replace"), f"{command} started")
    return process


def searchable(client: Any, prefix: str) -> int:
    """The lines of `prefix` searchable now (0 while its first index is being created)."""
    from elasticsearch import ApiError

    try:
        return int(client.count(index=f"{prefix}-logs-*", ignore_unavailable=True)["count"])
    except ApiError:  # its shards are starting
        return 0


def all_searchable(client: Any, prefix: str, total: int) -> Callable[[], bool]:
    return lambda: searchable(client, prefix) == total


def indices_remove(client: Any, prefix: str) -> None:
    client.indices.delete(index=f"{prefix}-*", expand_wildcards="all", ignore_unavailable=True)
    client.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-*")


def lines_write(runs: int, lines_per_run: int) -> list[Any]:
    """Runs with their lines and their `dts.run.logged` events, as the capture writes them."""
    from django.db import transaction
    from django.utils import timezone

    from apps.accounts.models import Team
    from apps.events.models import EventType
    from apps.events.outbox import event_new, events_record
    from apps.jobs.services import job_create
    from apps.runs.models import Run, RunLogLine

    team, _ = Team.objects.get_or_create(name="bench")
    job = job_create(team=team, name=f"loader {uuid.uuid4().hex[:8]}", task_type="dts.noop")
    now = timezone.now()
    created = Run.objects.bulk_create(
        Run(job=job, trigger="api", task_type="dts.noop") for _ in range(runs)
    )
    for run in created:
        with transaction.atomic():
            RunLogLine.objects.bulk_create(
                RunLogLine(
                    run=run,
                    attempt=1,
                    sequence=number,
                    logged_at=now,
                    level="INFO",
                    logger="loader",
                    message=f"row {number} of {run.id} loaded into the warehouse",
                )
                for number in range(1, lines_per_run + 1)
            )
            events_record(
                (
                    event_new(
                        type=EventType.RUN_LOGGED,
                        subject=f"runs/{run.id}",
                        job_id=job.id,
                        time=now,
                        data={
                            "run_id": str(run.id),
                            "attempt": 1,
                            "first_sequence": first,
                            "last_sequence": first + BATCH_LINES - 1,
                        },
                    )
                    for first in range(1, lines_per_run + 1, BATCH_LINES)
                ),
                announce=False,
            )
    return created


def events_publish() -> None:
    """Publish the outbox to the bench's topic with a relay, then stop it."""
    from apps.events.models import OutboxEvent

    relay = manage("relay_events", prefix=PREFIX, ready="Relay started")
    try:
        unpublished = OutboxEvent.objects.filter(published_at__isnull=True)
        wait_for(lambda: not unpublished.exists(), "every event published", every=0.5)
    finally:
        stop(relay)


def bench_throughput(lines: int, rounds: int) -> dict[str, Any]:
    from django.test import override_settings
    from elasticsearch.helpers import streaming_bulk

    from apps.logs.client import elasticsearch_client
    from apps.logs.documents import templates_ensure
    from apps.logs.indexer import BULK_CHUNK, line_actions
    from apps.logs.source import LineRange

    runs = lines_write(max(1, lines // LINES_PER_RUN), LINES_PER_RUN)
    total = len(runs) * LINES_PER_RUN
    events_publish()
    client = elasticsearch_client()
    # The same documents, as the client's user has them: objects (the indexer has PostgreSQL
    # write their JSON).
    actions = [
        action | {"_source": json.loads(action["_source"])}
        for run in runs
        for action in line_actions([LineRange(run.id, 1, LINES_PER_RUN)])
    ]
    measured = []
    for number in range(rounds):
        one = {}
        for peer in ("indexer", "bulk") if number % 2 == 0 else ("bulk", "indexer"):
            prefix = f"{PREFIX}-{peer}"
            indices_remove(client, prefix)
            with override_settings(DTS_LOG_INDEX_PREFIX=prefix):
                templates_ensure(client)
            if peer == "bulk":
                started = time.monotonic()
                for ok, item in streaming_bulk(
                    client, _retargeted(actions, prefix), chunk_size=BULK_CHUNK
                ):
                    if not ok:
                        raise RuntimeError(f"refused: {item}")
                done = wait_for(all_searchable(client, prefix, total), "bulk searchable")
            else:
                indexer = manage(
                    "index_logs", prefix=prefix, ready="Indexer started", topic_of=PREFIX
                )
                started = time.monotonic()
                try:
                    done = wait_for(all_searchable(client, prefix, total), "indexed")
                finally:
                    stop(indexer)
            one[peer] = total / (done - started)
            indices_remove(client, prefix)
        measured.append(one)
    client.close()
    return {
        "lines": total,
        "rounds": measured,
        "indexer": statistics.median(one["indexer"] for one in measured),
        "bulk": statistics.median(one["bulk"] for one in measured),
        "ratio": statistics.median(one["indexer"] / one["bulk"] for one in measured),
    }


def _retargeted(actions: list[dict[str, Any]], prefix: str) -> Iterator[dict[str, Any]]:
    """The actions with their index under `prefix` instead of the settings'."""
    from django.conf import settings

    current = settings.DTS_LOG_INDEX_PREFIX
    for action in actions:
        yield action | {"_index": prefix + action["_index"].removeprefix(current)}


def bench_lag(rate: int, seconds: int) -> dict[str, Any]:
    """Lines written at `rate` per second for `seconds`, relay and indexer running: the lag of
    each batch from its commit to searchable."""
    from django.db import connection
    from elastic_transport import TransportError
    from elasticsearch import ApiError

    from apps.accounts.models import Team
    from apps.jobs.services import job_create
    from apps.logs.client import elasticsearch_client
    from apps.runs.logs import RunLogCapture
    from apps.runs.models import Run

    prefix = f"{PREFIX}-lag"
    client = elasticsearch_client()
    indices_remove(client, prefix)
    team, _ = Team.objects.get_or_create(name="bench")
    job = job_create(team=team, name=f"lag {uuid.uuid4().hex[:8]}", task_type="dts.noop")
    batches_per_second = max(1, rate // BATCH_LINES)
    runs = Run.objects.bulk_create(
        Run(job=job, trigger="api", task_type="dts.noop") for _ in range(batches_per_second)
    )
    captures = [RunLogCapture(run_id=run.id, job_id=job.id, attempt=1) for run in runs]
    written: list[tuple[str, int, float]] = []  # run, last sequence, committed at
    seen: dict[str, int] = {}
    first_seen: dict[tuple[str, int], float] = {}
    stopping = threading.Event()

    def poll() -> None:
        watcher = elasticsearch_client()
        while not stopping.is_set():
            try:
                answer = watcher.search(
                    index=f"{prefix}-logs-*",
                    size=0,
                    query={"terms": {"run": [str(run.id) for run in runs]}},
                    aggs={
                        "runs": {
                            "terms": {"field": "run", "size": len(runs)},
                            "aggs": {"last": {"max": {"field": "sequence"}}},
                        }
                    },
                    ignore_unavailable=True,
                )
            except (ApiError, TransportError):  # its index is being created: not searchable yet
                stopping.wait(0.1)
                continue
            now = time.monotonic()
            for bucket in answer.get("aggregations", {}).get("runs", {}).get("buckets", []):
                seen[bucket["key"]] = int(bucket["last"]["value"])
            for run, last, _ in written:
                if (run, last) not in first_seen and seen.get(run, 0) >= last:
                    first_seen[(run, last)] = now
            stopping.wait(0.1)
        watcher.close()

    relay = manage("relay_events", prefix=prefix, ready="Relay started")
    indexer = manage("index_logs", prefix=prefix, ready="Indexer started")
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        tick = 1 / batches_per_second
        next_at = time.monotonic()
        for number in range(batches_per_second * seconds):
            capture = captures[number % len(captures)]
            for _ in range(BATCH_LINES):
                capture.add(
                    level="INFO", logger="loader", message="row loaded", created=time.time()
                )
            capture.flush()  # what add() has not flushed yet (it flushes a second's lines too)
            written.append((str(capture.run_id), capture.sequence, time.monotonic()))
            next_at += tick
            time.sleep(max(0.0, next_at - time.monotonic()))
        achieved = len(written) * BATCH_LINES / (time.monotonic() - (next_at - seconds))
        wait_for(lambda: len(first_seen) == len(written), "every batch searchable", every=0.5)
    finally:
        stopping.set()
        poller.join(5)
        stop(indexer)
        stop(relay)
        indices_remove(client, prefix)
        client.close()
        connection.close()
    lags = [first_seen[(run, last)] - committed for run, last, committed in written]
    return {
        "rate": rate,
        "achieved_rate": achieved,
        "seconds": seconds,
        "batches": len(lags),
        "lag_p50_s": percentile(lags, 0.50),
        "lag_p99_s": percentile(lags, 0.99),
        "lag_max_s": max(lags),
    }


def corpus_rows(lines: int, runs: int) -> Iterator[tuple[int, int, datetime, str, str]]:
    """(run number, sequence, logged at, level, message) of the search corpus: the same each
    time (seeded), a line a second from 1 November 2026, six words each."""
    chooser = random.Random(20)  # noqa: S311 (a corpus, not a secret)
    cumulative = list(itertools.accumulate(1 / rank for rank in range(1, len(VOCABULARY) + 1)))
    start_at = datetime(2026, 11, 1, tzinfo=UTC)
    per_run = max(1, lines // runs)
    for number in range(lines):
        words = chooser.choices(VOCABULARY, cum_weights=cumulative, k=6)
        level = "ERROR" if number % 50 == 0 else "INFO"
        moment = start_at + timedelta(seconds=number)
        yield (number // per_run) % runs, number % per_run + 1, moment, level, " ".join(words)


def bench_search(lines: int, job_count: int, teams: int, rate: int, seconds: int) -> dict[str, Any]:
    """Search latency over a corpus of `lines` lines, Elasticsearch against PostgreSQL."""
    from django.conf import settings
    from django.db import connection
    from django.test import override_settings
    from elasticsearch.helpers import parallel_bulk

    from apps.accounts.models import Team
    from apps.jobs.models import Job
    from apps.logs.client import elasticsearch_client
    from apps.logs.documents import LINES, templates_ensure
    from apps.logs.search import LogQuery, logs_search
    from apps.runs.models import Run, RunLogLine

    prefix = f"{PREFIX}-search"
    client = elasticsearch_client()
    indices_remove(client, prefix)
    team_rows = Team.objects.bulk_create(Team(name=f"team {n}") for n in range(teams))
    jobs = Job.objects.bulk_create(
        Job(team=team_rows[n % teams], name=f"job {n}", task_type="dts.noop")
        for n in range(job_count)
    )
    runs_per_job = 5
    runs = Run.objects.bulk_create(
        Run(job=job, trigger="api", task_type="dts.noop", queue=job.queue)
        for job in jobs
        for _ in range(runs_per_job)
    )
    started = time.monotonic()
    with override_settings(DTS_LOG_INDEX_PREFIX=prefix):
        templates_ensure(client)
        table = RunLogLine._meta.db_table
        columns = "run_id, attempt, sequence, logged_at, level, logger, message"
        rows = corpus_rows(lines, len(runs))
        while chunk := list(itertools.islice(rows, 100_000)):
            buffer = io.StringIO()
            for run_number, sequence, moment, level, message in chunk:
                buffer.write(
                    f"{runs[run_number].id}\t1\t{sequence}\t{moment.isoformat()}\t{level}\t"
                    f"loader\t{message}\n"
                )
            buffer.seek(0)
            with connection.cursor() as cursor:
                cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)

        def documents() -> Iterator[dict[str, Any]]:
            for run_number, sequence, moment, level, message in corpus_rows(lines, len(runs)):
                run = runs[run_number]
                job = jobs[run_number // runs_per_job]
                yield {
                    "_op_type": "index",
                    "_index": LINES.index_for(moment),
                    "_id": f"{run.id}:1:{sequence}",
                    "_source": {
                        "run": str(run.id), "attempt": 1, "sequence": sequence,
                        "logged_at": moment.isoformat(), "level": level, "logger": "loader",
                        "message": message, "job": job.id, "job_name": job.name,
                        "team": job.team_id, "task_type": "dts.noop", "queue": job.queue,
                        "worker": "",
                    },
                }  # fmt: skip

        for ok, item in parallel_bulk(client, documents(), thread_count=2, chunk_size=2000):
            if not ok:
                raise RuntimeError(f"refused: {item}")
        client.indices.refresh(index=f"{prefix}-logs-*")
        with connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS bench_message_trgm ON {table} "
                "USING gin (message gin_trgm_ops)"
            )
            cursor.execute(f"VACUUM ANALYZE {table}")
        loaded = time.monotonic() - started

        chooser = random.Random(7)  # noqa: S311 (queries, not a secret)
        # Words of every frequency: the commonest, the middle, the rarest.
        words = VOCABULARY[:5] + VOCABULARY[len(VOCABULARY) // 2 :][:5] + VOCABULARY[-5:]
        queries = [
            LogQuery(team_ids=[chooser.choice(team_rows).id], q=chooser.choice(words))
            for _ in range(rate * seconds)
        ]
        results: dict[str, Any] = {}
        for backend in ("elasticsearch", "database"):
            settings.ELASTICSEARCH_URL = ELASTICSEARCH if backend == "elasticsearch" else ""
            logs_search(queries[0], size=20, after=None)  # warm
            times = []
            next_at = time.monotonic()
            for query in queries:
                began = time.perf_counter()
                logs_search(query, size=20, after=None)
                times.append((time.perf_counter() - began) * 1000)
                next_at += 1 / rate
                time.sleep(max(0.0, next_at - time.monotonic()))
            results[backend] = {
                "p50_ms": percentile(times, 0.50),
                "p99_ms": percentile(times, 0.99),
                "queries": len(times),
            }
        settings.ELASTICSEARCH_URL = ELASTICSEARCH
    indices_remove(client, prefix)
    client.close()
    return {
        "lines": lines,
        "jobs": job_count,
        "teams": teams,
        "rate": rate,
        "seconds": seconds,
        "load_seconds": loaded,
        **results,
        "ratio_p99": results["database"]["p99_ms"] / results["elasticsearch"]["p99_ms"],
    }


def bench_cost(runs: int, lines: int, rounds: int) -> dict[str, Any]:
    """Bursts of `dts.log` runs with the indexer running and not (the relay runs in both)."""
    from apps.logs.client import elasticsearch_client

    measured = []
    prefixes = []
    for number in range(rounds):
        one: dict[str, float] = {}
        for indexing in (True, False) if number % 2 == 0 else (False, True):
            # A topic and indices per burst: an indexer reads only its own burst's events.
            prefix = f"{PREFIX}-cost-{number}-{indexing}".lower()
            prefixes.append(prefix)
            relay = manage("relay_events", prefix=prefix, ready="Relay started")
            indexer = (
                manage("index_logs", prefix=prefix, ready="Indexer started") if indexing else None
            )
            try:
                figures = bench_dts(runs, 0, number, task=("dts.log", {"lines": lines}))
            finally:
                for process in (indexer, relay):
                    if process is not None:
                        stop(process)
            name = "on" if indexing else "off"
            one[f"{name} runs/s"] = figures["runs_per_second"]
            one[f"{name} cpu"] = figures["cpu_ms_per_run"]
        measured.append(one)
    client = elasticsearch_client()
    for prefix in prefixes:
        indices_remove(client, prefix)
    client.close()
    return {
        "runs": runs,
        "lines_per_run": lines,
        "rounds": measured,
        "cost": statistics.median(1 - one["on runs/s"] / one["off runs/s"] for one in measured),
        "cpu_cost": statistics.median(one["on cpu"] / one["off cpu"] - 1 for one in measured),
    }


def report(results: dict[str, Any]) -> str:
    throughput, lag, search, cost = (results[k] for k in ("throughput", "lag", "search", "cost"))
    met = {True: "met", False: "missed"}
    throughput_met = (
        throughput["ratio"] >= GOAL_RATIO and throughput["indexer"] >= GOAL_LINES_PER_SECOND
    )
    lines = [
        "# Log search benchmark",
        "",
        f"- Date: {results['date']}; command `python -m bench.logs {results['command']}`",
        f"- Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}; "
        "PostgreSQL, Redis, Kafka and Elasticsearch (one node, 512 MB heap) on loopback",
        "",
        "| figure | dts | peer | target |",
        "|---|---|---|---|",
        f"| indexing, source to searchable (lines/s, median of {len(throughput['rounds'])}; "
        f"{throughput['lines']:,} lines) | indexer {throughput['indexer']:,.0f} | "
        f"streaming_bulk {throughput['bulk']:,.0f} | ≥ 0.8x and ≥ 10,000: "
        f"{throughput['ratio']:.2f}x, {met[throughput_met]} |",
        f"| lag, line written → searchable at {lag['achieved_rate']:,.0f} lines/s, p50 / p99 / "
        f"max (s) | {lag['lag_p50_s']:.2f} / {lag['lag_p99_s']:.2f} / {lag['lag_max_s']:.2f} | "
        f"| p99 ≤ 2 s: {met[lag['lag_p99_s'] <= GOAL_LAG_P99_SECONDS]} |",
        f"| search, one word, team-scoped, highlighted, {search['lines']:,} lines of "
        f"{search['jobs']:,} jobs and {search['teams']} teams, {search['rate']}/s: p50 / p99 "
        f"(ms) | {search['elasticsearch']['p50_ms']:.1f} / {search['elasticsearch']['p99_ms']:.1f}"
        f" | PostgreSQL ILIKE + trigram {search['database']['p50_ms']:.1f} / "
        f"{search['database']['p99_ms']:.1f} ({search['ratio_p99']:.1f}x the p99) | p99 ≤ 150 "
        f"ms: {met[search['elasticsearch']['p99_ms'] <= GOAL_SEARCH_P99_MS]} |",
        f"| runs of dts.log ({cost['lines_per_run']} lines each), indexer on vs off: runs/s "
        f"cost, machine CPU per run (medians of {len(cost['rounds'])} rounds) | "
        f"{cost['cost']:+.1%}, {cost['cpu_cost']:+.1%} | | |",
        "",
        "Indexing rounds (lines/s, indexer / bulk): "
        + ", ".join(f"{one['indexer']:,.0f} / {one['bulk']:,.0f}" for one in throughput["rounds"])
        + ". Cost rounds (runs/s and CPU ms per run, on / off): "
        + ", ".join(
            f"{one['on runs/s']:.0f} / {one['off runs/s']:.0f} and {one['on cpu']:.2f} / "
            f"{one['off cpu']:.2f}"
            for one in cost["rounds"]
        )
        + f". The search corpus took {search['load_seconds']:.0f} s to load (COPY, bulk, a "
        "trigram index). The indexer shares the machine's two cores with everything else: "
        "deployed, it runs on nodes of its own.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in (
        ("lines", 500_000), ("rounds", 3), ("lag-rate", 5000), ("lag-seconds", 30),
        ("search-lines", 5_000_000), ("jobs", 1000), ("teams", 20), ("query-rate", 10),
        ("query-seconds", 30), ("burst-runs", 1000), ("burst-lines", 20),
    ):  # fmt: skip
        parser.add_argument(f"--{name}", type=int, default=default)
    options = parser.parse_args()
    if min(vars(options).values()) < 1:
        parser.error("every option must be at least 1")
    os.environ.update(environment(PREFIX))
    database_recreate(DATABASE)
    import django

    django.setup()
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv[1:]),
    }
    parts: dict[str, Callable[[], dict[str, Any]]] = {
        "throughput": lambda: bench_throughput(options.lines, options.rounds),
        "lag": lambda: bench_lag(options.lag_rate, options.lag_seconds),
        "search": lambda: bench_search(
            options.search_lines,
            options.jobs,
            options.teams,
            options.query_rate,
            options.query_seconds,
        ),
        "cost": lambda: bench_cost(options.burst_runs, options.burst_lines, options.rounds),
    }
    for name, part in parts.items():
        print(f"{datetime.now(UTC):%H:%M:%S} {name}…", flush=True)
        results[name] = part()
        print(json.dumps(results[name], default=str), flush=True)
    (RESULTS / "logs.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    text = report(results)
    (RESULTS / "logs.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
