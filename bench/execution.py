"""No-op runs per second end to end: dts against Celery with django-celery-results (the peer that
keeps a record) and bare Celery (the limit), in the same run on this machine.

    python -m bench.execution [--runs 2000] [--paced-seconds 10] [--rounds 3]

Every peer: one worker process with 2 prefork processes, the same Redis on loopback, and dts's
Celery settings (JSON, acks_late, prefetch 1, priority queues, default time limits). dts records
every run's states in PostgreSQL; Celery + django-celery-results records each task's start
(`task_track_started`) and end with its arguments (`result_extended`) in PostgreSQL, a database of
its own; bare Celery records nothing. Both Celery peers run the same task, which only notes its
start time in Redis for the latency figure.

- throughput: N runs triggered at once (dts: N queued runs and their events inserted in one
  transaction, as the scheduler fires them, then published; Celery: N `send_task`), timed from
  the trigger to the last run recorded finished (dts: SUCCEEDED in PostgreSQL; the recording peer:
  its SUCCESS row) or started (bare Celery);
- every worker first executes WARM_UP_RUNS runs that are not measured;
- latency: enqueue -> start per run, with runs published at a steady 20/s (no backlog);
- PostgreSQL writes per run (dts and the recording peer): the database's tuples inserted, updated
  and deleted and its commits, per run, read STATISTICS_SETTLE_SECONDS after the burst;
- CPU per run: the whole machine's busy CPU time (every core, every process: the worker, Redis,
  PostgreSQL, this harness) over the throughput burst, per run. Every peer keeps the two cores
  about 80% busy, so the ratio of runs/s follows the ratio of CPU per run; it varies with
  contention too (a slow burst spends more CPU per run); and the same split by process (the
  worker's main process, its pool processes, PostgreSQL, Redis, this harness, the rest), from each
  process's own CPU time.

Writes bench/results/execution.json and execution.md. Bounded: every wait has a deadline.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs in requirements (types-psutil)
import psycopg2
import redis

from bench.databases import REPO, database_recreate, database_url

RESULTS = REPO / "bench" / "results"
LOGS = Path(tempfile.gettempdir())
DATABASE = "dts_bench_execution"
RESULTS_PEER_DATABASE = "dts_bench_celery_results"
RESULTS_PEER_ENV = {
    "DJANGO_SETTINGS_MODULE": "bench.settings_celery_results",
    "DATABASE_URL": database_url(RESULTS_PEER_DATABASE),
}
BROKER = "redis://127.0.0.1:56379/10"
PACED_RATE = 20
# The kombu priority runs_publish gives a run of the default priority (5): the same list in Redis.
PRIORITY = 4
DEADLINE_SECONDS = 120
# Runs each worker executes before it is measured: its processes, connections and caches warm.
WARM_UP_RUNS = 200
# PostgreSQL's idle sessions report their tuple and commit counts up to 10 s late.
STATISTICS_SETTLE_SECONDS = 11
# prometheus_client's multiprocess folder (workers.multiprocess).
MULTIPROCESS_FOLDER = "PROMETHEUS_MULTIPROC_DIR"

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ["DATABASE_URL"] = database_url(DATABASE)
os.environ["CELERY_BROKER_URL"] = BROKER


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def run_figures(
    *, runs: int, elapsed: float, busy: float, latencies: list[float]
) -> dict[str, float]:
    """What both peers are compared by: `runs` in `elapsed` seconds using `busy` seconds of the
    machine's CPU, and the paced runs' enqueue-to-start `latencies` (ms)."""
    return {
        "runs_per_second": runs / elapsed,
        "latency_p50_ms": percentile(latencies, 0.50),
        "latency_p99_ms": percentile(latencies, 0.99),
        "cpu_ms_per_run": busy * 1000 / runs,
    }


def child_environ() -> dict[str, str]:
    """The environment of a process a benchmark starts: this one's, but for its multiprocess
    folder (bench.metrics sets one): a worker counts its metrics in a folder of its own, and the
    other processes serve their own registry."""
    return {key: value for key, value in os.environ.items() if key != MULTIPROCESS_FOLDER}


def start_worker(app: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "celery", "-A", app, "worker", "--queues", "default"]
    command += ["--concurrency", "2", "--pool", "prefork", "--without-mingle", "--without-gossip"]
    command += ["--loglevel", "WARNING", "--hostname", f"bench-{app}@%h"]
    with log.open("w") as output:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=child_environ() | (env or {}),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    time.sleep(6)  # started and consuming (its log is quiet at WARNING)
    return process


def start(command: list[str], *, env: dict[str, str], log_name: str) -> subprocess.Popen[bytes]:
    """`command` in the repository, its output in LOGS/`log_name`."""
    with (LOGS / log_name).open("w") as output:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not done in {DEADLINE_SECONDS} s")
        # Both peers' figures come from the times they recorded, not from when this loop saw them:
        # polling seldom keeps the harness's own load off the machine it measures.
        time.sleep(0.5)


def cpu_busy_seconds() -> float:
    """The CPU time the machine has spent busy, on every core, since it booted."""
    times = psutil.cpu_times()
    return float(times.user + times.nice + times.system + times.irq + times.softirq)


CPU_GROUPS = ("worker main", "worker pool", "postgres", "redis", "harness", "other")


def cpu_by_process(worker: subprocess.Popen[bytes]) -> dict[int, tuple[str, float]]:
    """Each live process's CPU seconds so far, with its group (CPU_GROUPS)."""
    pool = {child.pid for child in psutil.Process(worker.pid).children()}
    used = {}
    for process in psutil.process_iter(["name"]):
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        used[process.pid] = (_group(process, worker.pid, pool), times.user + times.system)
    return used


def _group(process: psutil.Process, worker: int, pool: set[int]) -> str:
    name = process.info["name"] or ""
    if process.pid == worker:
        return "worker main"
    if process.pid in pool:
        return "worker pool"
    for server in ("postgres", "redis"):
        if name.startswith(server):
            return server
    return "harness" if process.pid == os.getpid() else "other"


def cpu_split(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], runs: int
) -> dict[str, float]:
    """CPU ms per run by group between two `cpu_by_process` readings (processes that ended in
    between are missed: none should)."""
    totals = dict.fromkeys(CPU_GROUPS, 0.0)
    for pid, (group, seconds) in after.items():
        totals[group] += seconds - before.get(pid, (group, 0.0))[1]
    return {group: seconds * 1000 / runs for group, seconds in totals.items()}


def database_rows(name: str, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """The rows of `query` (none for a statement that returns none) on database `name`, in a
    session of its own that commits as it goes."""
    connection = psycopg2.connect(database_url(name))
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def database_counters(name: str) -> tuple[int, int]:
    """The tuples written and the commits of database `name` so far."""
    rows = database_rows(
        name,
        "select tup_inserted + tup_updated + tup_deleted, xact_commit "
        "from pg_stat_database where datname = %s",
        [name],
    )
    if not rows:
        raise RuntimeError(f"PostgreSQL has no statistics for the database {name}")
    [(tuples, commits)] = rows
    return int(tuples), int(commits)


# The tables a run writes to, whose growth per run bench_dts measures.
RUN_TABLES = ("runs_run", "runs_runattempt", "events_outboxevent")


def table_bytes(name: str) -> dict[str, tuple[int, int]]:
    """Each of RUN_TABLES' bytes in database `name`: its heap (with TOAST) and its indexes."""
    rows = database_rows(
        name,
        "SELECT relname, pg_table_size(oid), pg_indexes_size(oid) FROM pg_class "
        "WHERE relkind = 'r' AND relname = ANY(%s)",
        [list(RUN_TABLES)],
    )
    return {table: (heap, indexes) for table, heap, indexes in rows}


def clean_slate() -> None:
    """Every measurement starts from empty, vacuumed run and event tables: what earlier rounds
    left (rows, dead tuples, an autovacuum under way) would otherwise weigh on the later ones."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE runs_run, runs_runattempt, runs_runlogline, events_outboxevent CASCADE"
        )
        cursor.execute("VACUUM ANALYZE")


def cpu_ns(pid: int) -> int:
    """A process's CPU time (ns) from /proc/<pid>/schedstat: nanoseconds, where psutil's
    cpu_times counts in clock ticks (10 ms)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


def hot_path_pairs(*, setting: str, runs: int, pairs: int) -> dict[str, Any]:
    """CPU time per run of the worker's path through a run (in this process, without Celery, and
    in its PostgreSQL backend) with the boolean `setting` off and on. Each pair is `runs` runs of
    each, interleaved one by one (each two in alternating order) and each timed on its own in
    nanoseconds, so that the machine's other work and any drift fall on both alike; the medians
    over the pairs of what "on" adds."""
    from django.conf import settings
    from django.db import connection, transaction
    from django.utils import timezone

    from apps.accounts.models import Team
    from apps.jobs.services import job_create
    from apps.runs.models import Run
    from apps.runs.services.moves import run_attempt_end
    from apps.runs.states import RunState
    from workers.tasks import execute_run

    clean_slate()
    team, _ = Team.objects.get_or_create(name="bench")
    job = job_create(team=team, name=f"hot path {uuid.uuid4().hex[:8]}", task_type="dts.noop")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    def measure() -> dict[bool, tuple[float, float]]:
        with transaction.atomic():
            queued = Run.objects.bulk_create(
                Run(job=job, trigger="api", task_type="dts.noop", args={}, queued_at=timezone.now())
                for _ in range(2 * runs)
            )
        spent = {False: [0, 0], True: [0, 0]}
        for number, run in enumerate(queued):
            on = (number + number // 2) % 2 == 1  # off, on, on, off, off, on, ...
            setattr(settings, setting, on)
            backend_before = cpu_ns(backend)
            process_before = time.process_time_ns()
            result = execute_run.run(str(run.id), 1, limited=False)
            run_attempt_end(run_id=run.id, attempt=1, outcome=RunState.SUCCEEDED, result=result)
            spent[on][0] += time.process_time_ns() - process_before
            spent[on][1] += cpu_ns(backend) - backend_before
        return {on: (process / runs / 1e6, db / runs / 1e6) for on, (process, db) in spent.items()}

    measure()  # warm: connections, prepared statements, caches, files
    measured = []
    for _ in range(pairs):
        one = measure()
        measured.append({"off": one[False], "on": one[True]})
    setattr(settings, setting, True)
    return {
        "pairs": measured,
        **{
            f"{part} added ms": statistics.median(
                pair["on"][index] - pair["off"][index] for pair in measured
            )
            for index, part in enumerate(("process", "postgres"))
        },
        "off ms": statistics.median(sum(pair["off"]) for pair in measured),
    }


def bench_dts(
    runs: int,
    paced_seconds: int,
    round_number: int,
    events: bool = True,
    metrics: bool = True,
    task: tuple[str, dict[str, Any]] = ("dts.noop", {}),
) -> dict[str, Any]:
    """dts's figures; `events` off writes no outbox events (DTS_EVENTS_ENABLED), in the worker and
    in this process, which publishes; `metrics` off records none in the worker
    (DTS_METRICS_ENABLED); `task` is the runs' task type and arguments. Without paced seconds there
    is no latency figure."""
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection, transaction
    from django.utils import timezone

    from apps.accounts.models import Team
    from apps.events.outbox import events_record
    from apps.jobs.models import Job
    from apps.jobs.services import job_create
    from apps.runs.models import Run
    from apps.runs.services.build import run_trigger
    from apps.runs.services.publish import run_queued_event, runs_publish
    from apps.runs.states import RunState

    settings.DTS_EVENTS_ENABLED = events
    database = connection.settings_dict["NAME"]
    clean_slate()
    team, _ = Team.objects.get_or_create(name="bench")
    # A unique name per measurement.
    tag = f"{round_number} {events} {metrics} {uuid.uuid4().hex[:8]}"
    task_type, args = task
    job = job_create(team=team, name=f"bench {task_type} {tag}", task_type=task_type, args=args)
    warm_up = job_create(team=team, name=f"warm-up {tag}", task_type=task_type, args=args)

    def burst(job: Job, count: int) -> None:
        """Trigger `count` runs at once: inserted queued with their events, then published."""
        now = timezone.now()
        with transaction.atomic():
            queued = Run.objects.bulk_create(
                Run(job=job, trigger="api", task_type=task_type, args=args, queued_at=now)
                for _ in range(count)
            )
            events_record(run_queued_event(run, time=now) for run in queued)
        runs_publish(runs=queued)

    # Its log level as bare Celery's --loglevel WARNING (dts leaves the root logger to Django).
    env = {
        "DTS_EVENTS_ENABLED": str(events),
        "DTS_METRICS_ENABLED": str(metrics),
        "DTS_LOG_LEVEL": "WARNING",
    }
    worker = start_worker("workers", LOGS / "execution-dts-worker.log", env=env)
    try:
        burst(warm_up, WARM_UP_RUNS)
        warmed = Run.objects.filter(job=warm_up, state=RunState.SUCCEEDED)
        wait_until(lambda: warmed.count() == WARM_UP_RUNS, "dts warm-up runs")
        time.sleep(STATISTICS_SETTLE_SECONDS)
        tuples_before, commits_before = database_counters(database)
        bytes_before = table_bytes(database)
        processes_before = cpu_by_process(worker)
        busy_before = cpu_busy_seconds()
        started = time.time()
        burst(job, runs)
        done = Run.objects.filter(job=job, state=RunState.SUCCEEDED)
        wait_until(lambda: done.count() == runs, "dts throughput runs")
        busy = cpu_busy_seconds() - busy_before
        by_process = cpu_split(processes_before, cpu_by_process(worker), runs)
        finished = [run.finished_at for run in done if run.finished_at is not None]
        elapsed = max(finished).timestamp() - started
        time.sleep(STATISTICS_SETTLE_SECONDS)
        tuples_after, commits_after = database_counters(database)
        bytes_after = table_bytes(database)

        paced = []
        for _ in range(paced_seconds * PACED_RATE):
            paced.append(run_trigger(job=job).id)
            time.sleep(1 / PACED_RATE)
        paced_runs = Run.objects.filter(id__in=paced, state=RunState.SUCCEEDED)
        wait_until(lambda: paced_runs.count() == len(paced), "dts paced runs")
        latencies = [
            (run.started_at - run.queued_at).total_seconds() * 1000
            for run in paced_runs
            if run.started_at is not None and run.queued_at is not None
        ]
    finally:
        stop(worker)
    return run_figures(runs=runs, elapsed=elapsed, busy=busy, latencies=latencies) | {
        "cpu_ms_per_run_by_process": by_process,
        "postgres_tuples_written_per_run": (tuples_after - tuples_before) / runs,
        "postgres_commits_per_run": (commits_after - commits_before) / runs,
        # What the burst's runs added to each table (dead row versions included: autovacuum
        # makes their room reusable, so this is the growth before it comes round).
        "postgres_bytes_per_run": {
            table: [
                (after - before) / runs
                for after, before in zip(sizes, bytes_before[table], strict=True)
            ]
            for table, sizes in bytes_after.items()
        },
    }


def bench_celery(runs: int, paced_seconds: int, *, recording: bool) -> dict[str, Any]:
    """A Celery peer's figures: with django-celery-results (`recording`: throughput up to the last
    SUCCESS row written, and its PostgreSQL writes) or bare (up to the last task started)."""
    from bench.bare_celery import app, probe

    def send(count: int) -> None:
        with app.producer_or_acquire() as producer:
            for _ in range(count):
                app.send_task(
                    "bench.noop", args=[time.time()], priority=PRIORITY, producer=producer
                )

    def results(query: str) -> Any:
        rows = database_rows(RESULTS_PEER_DATABASE, query)
        return rows[0][0] if rows else None

    def succeeded() -> int:
        return int(
            results(
                "SELECT count(*) FROM django_celery_results_taskresult WHERE status = 'SUCCESS'"
            )
        )

    probe.delete("bench:started")
    if recording:
        results("TRUNCATE django_celery_results_taskresult")
        worker = start_worker(
            "bench.celery_results", LOGS / "execution-results-worker.log", env=RESULTS_PEER_ENV
        )
    else:
        worker = start_worker("bench.bare_celery", LOGS / "execution-celery-worker.log")
    try:
        send(WARM_UP_RUNS)
        wait_until(lambda: probe.llen("bench:started") >= WARM_UP_RUNS, "warm-up runs")
        if recording:
            wait_until(lambda: succeeded() >= WARM_UP_RUNS, "warm-up results")
            time.sleep(STATISTICS_SETTLE_SECONDS)
            tuples_before, commits_before = database_counters(RESULTS_PEER_DATABASE)
        probe.delete("bench:started")
        processes_before = cpu_by_process(worker)
        busy_before = cpu_busy_seconds()
        started = time.time()
        send(runs)
        if recording:
            wait_until(lambda: succeeded() >= WARM_UP_RUNS + runs, "throughput results")
        wait_until(lambda: probe.llen("bench:started") >= runs, "throughput runs")
        busy = cpu_busy_seconds() - busy_before
        by_process = cpu_split(processes_before, cpu_by_process(worker), runs)
        if recording:
            last = results(
                "SELECT max(date_done) FROM django_celery_results_taskresult"
            ).timestamp()
            time.sleep(STATISTICS_SETTLE_SECONDS)
            tuples_after, commits_after = database_counters(RESULTS_PEER_DATABASE)
        else:
            last = max(float(line.split()[1]) for line in probe.lrange("bench:started", 0, -1))
        elapsed = last - started

        probe.delete("bench:started")
        for _ in range(paced_seconds * PACED_RATE):
            app.send_task("bench.noop", args=[time.time()], priority=PRIORITY)
            time.sleep(1 / PACED_RATE)
        wait_until(lambda: probe.llen("bench:started") >= paced_seconds * PACED_RATE, "paced")
        latencies = [
            (float(end) - float(start)) * 1000
            for start, end in (line.split() for line in probe.lrange("bench:started", 0, -1))
        ]
    finally:
        stop(worker)
    figures: dict[str, Any] = run_figures(
        runs=runs, elapsed=elapsed, busy=busy, latencies=latencies
    )
    figures["cpu_ms_per_run_by_process"] = by_process
    if recording:
        figures |= {
            "postgres_tuples_written_per_run": (tuples_after - tuples_before) / runs,
            "postgres_commits_per_run": (commits_after - commits_before) / runs,
        }
    return figures


PEERS = {
    "dts": "dts",
    "celery_results": "Celery + django-celery-results",
    "bare_celery": "bare Celery",
}


def goals(rounds: list[dict[str, Any]]) -> list[tuple[str, list[float], float, bool]]:
    """Each goal of the benchmark: its name, the rounds' ratios, their median, whether met."""

    def ratios(figure: str, peer: str) -> list[float]:
        return [one["dts"][figure] / one[peer][figure] for one in rounds]

    measured = [
        (
            "runs/s, dts ÷ Celery + django-celery-results, at least 1.5x",
            ratios("runs_per_second", "celery_results"),
            lambda ratio: ratio >= 1.5,
        ),
        (
            "runs/s, dts ÷ bare Celery, at least 0.5x",
            ratios("runs_per_second", "bare_celery"),
            lambda ratio: ratio >= 0.5,
        ),
        (
            "machine CPU per run, dts ÷ bare Celery, at most 2.0x",
            ratios("cpu_ms_per_run", "bare_celery"),
            lambda ratio: ratio <= 2.0,
        ),
    ]
    return [
        (name, values, statistics.median(values), met(statistics.median(values)))
        for name, values, met in measured
    ]


def report(results: dict[str, Any]) -> str:
    rounds = results["rounds"]
    lines = [
        "# Execution benchmark: dts against Celery + django-celery-results and bare Celery",
        "",
        f"- Date: {results['date']}; command `python -m bench.execution --runs {results['runs']} "
        f"--paced-seconds {results['paced_seconds']} --rounds {len(rounds)}`",
        f"- Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}; "
        f"load average before {results['load_before']}, after {results['load_after']}",
        "- Every peer: one worker, 2 prefork processes, Redis and PostgreSQL on loopback, dts's "
        "Celery settings (JSON, acks_late, prefetch 1, priority queues, default time limits); "
        "no-op task",
        "- Celery + django-celery-results: the `django-db` result backend on PostgreSQL (a "
        "database of its own), `task_track_started` and `result_extended`: a row when the task "
        "starts, updated when it ends",
        "- Each round runs the three peers in a rotated order; each ratio is the median of the "
        "rounds' ratios.",
        "- dts as deployed: events on (each run's queued, started and succeeded events written to "
        "the outbox; no relay running), logging at WARNING like the Celery workers'.",
        "",
        "| round | peer | runs/s (burst of N) | machine CPU / run (ms) | enqueue → start p50 (ms) "
        "| p99 (ms) | PG tuples written / run | PG commits / run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for number, one in enumerate(rounds, start=1):
        for peer, name in PEERS.items():
            figures = one[peer]
            lines.append(
                f"| {number} | {name} | {figures['runs_per_second']:.0f} | "
                f"{figures['cpu_ms_per_run']:.2f} | {figures['latency_p50_ms']:.1f} | "
                f"{figures['latency_p99_ms']:.1f} | "
                f"{figures.get('postgres_tuples_written_per_run', 0):.1f} | "
                f"{figures.get('postgres_commits_per_run', 0):.1f} |"
            )
    growth = {
        table: [
            statistics.median(one["dts"]["postgres_bytes_per_run"][table][part] for one in rounds)
            for part in (0, 1)
        ]
        for table in RUN_TABLES
    }
    lines += [
        "",
        "PostgreSQL growth per dts run during the burst (median of rounds; heap with TOAST + "
        "indexes, dead row versions included): "
        + "; ".join(
            f"{table} {heap:.0f} B + {indexes:.0f} B" for table, (heap, indexes) in growth.items()
        )
        + ".",
    ]
    lines += [
        "",
        "CPU per run by process during the burst (ms, median of rounds; user + system time of "
        "each process, so the machine's figure above, which counts every core's busy time, is "
        "somewhat larger). The harness triggers the runs and polls for their ends.",
        "",
        f"| peer | {' | '.join(CPU_GROUPS)} |",
        f"|---|{'---|' * len(CPU_GROUPS)}",
    ]
    for peer, name in PEERS.items():
        medians = [
            statistics.median(one[peer]["cpu_ms_per_run_by_process"][group] for one in rounds)
            for group in CPU_GROUPS
        ]
        lines.append(f"| {name} | {' | '.join(f'{value:.2f}' for value in medians)} |")
    lines += ["", "| goal | median of rounds | rounds | met |", "|---|---|---|---|"]
    for name, values, median, met in goals(rounds):
        lines.append(
            f"| {name} | **{median:.2f}x** | {', '.join(f'{one:.2f}' for one in values)} | "
            f"{'yes' if met else 'no'} |"
        )
    lines += [
        "",
        "dts's and the recording peer's figures end at the last run's end recorded in PostgreSQL; "
        "bare Celery's at the last task started (it records nothing), so that comparison favours "
        "Celery.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--paced-seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    if min(options.runs, options.paced_seconds, options.rounds) < 1:
        parser.error("--runs, --paced-seconds and --rounds must be at least 1")
    RESULTS.mkdir(parents=True, exist_ok=True)
    database_recreate(DATABASE)
    database_recreate(RESULTS_PEER_DATABASE, env=RESULTS_PEER_ENV)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": options.runs,
        "paced_seconds": options.paced_seconds,
        "load_before": [round(load, 2) for load in os.getloadavg()],
        "rounds": [],
    }
    order = list(PEERS)
    for number in range(1, options.rounds + 1):
        one: dict[str, dict[str, float]] = {}
        for peer in order:
            redis.Redis.from_url(BROKER).flushdb()
            if peer == "dts":
                one[peer] = bench_dts(options.runs, options.paced_seconds, number)
            else:
                recording = peer == "celery_results"
                one[peer] = bench_celery(options.runs, options.paced_seconds, recording=recording)
        results["rounds"].append(one)
        order = order[1:] + order[:1]
    results["load_after"] = [round(load, 2) for load in os.getloadavg()]
    (RESULTS / "execution.json").write_text(json.dumps(results, indent=2) + "\n")
    text = report(results)
    (RESULTS / "execution.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
