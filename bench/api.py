"""The REST API against a plain Django view, on a database of 1 million runs.

    python -m bench.api [--runs 1000000] [--seconds 10] [--rounds 3]

Both are served by the production server: uvicorn with 2 worker processes, production settings
(DEBUG off; bench/settings_api.py adds the plain views, bench/api_urls.py). The API answers as a
team admin with an API token (authentication, team scoping, throttling counted in Redis, query
parameters validated, pagination); the plain view is `JsonResponse(list(queryset.values(...)))`
of the same rows.

- run list: a page of 50 of one job's succeeded runs, newest first;
- job detail: one job, with its team's name and its tags.

For each, vegeta (Go, built on first use into ~/.cache/dts/bin) first finds each peer's saturation
throughput (as many requests as 8 clients can send for --seconds) in --rounds rounds that
alternate the peers, then sends requests at 50% of the median for --seconds, at a constant rate,
for the latency percentiles. Every request comes on a new connection: uvicorn's workers share
one listening socket, and a kept-alive connection stays with the worker that accepted it, so a
few kept-alive connections may all load one worker while the other idles.

Writes bench/results/api.json and api.md. Bounded: every step has a duration, every wait a
deadline.
"""

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.databases import REPO, database_recreate
from bench.web import free_port, web_server_env

RESULTS = REPO / "bench" / "results"
LOGS = Path(tempfile.gettempdir())
DATABASE = "dts_bench_api"
VEGETA = Path(os.environ.get("DTS_CACHE_DIR", Path.home() / ".cache" / "dts")) / "bin" / "vegeta"
VEGETA_MODULE = "github.com/tsenart/vegeta/v12@v12.13.0"
JOBS = 100
SATURATION_CLIENTS = 8
TARGET_RATIO = 0.7
PAGE = 50
TARGET_P99_MS = 50
DEFAULT_RUNS = 1_000_000

SERVER_ENV = web_server_env(settings_module="bench.settings_api", database=DATABASE) | {
    "CELERY_BROKER_URL": "redis://127.0.0.1:56379/12",
    "DTS_CACHE_URL": "redis://127.0.0.1:56379/13",
    "DTS_LIVE_REDIS_URL": "redis://127.0.0.1:56379/13",
    # Throttling stays on (its Redis round trip is part of every request), out of the way.
    "DTS_API_THROTTLE_USER": "100000000/minute",
    "DTS_LOG_LEVEL": "WARNING",
}
os.environ.update({key: value for key, value in SERVER_ENV.items()})


def vegeta_build() -> None:
    if VEGETA.exists():
        return
    cache = VEGETA.parent.parent
    env = os.environ | {
        "GOBIN": str(VEGETA.parent),
        "GOPATH": str(cache / "go"),
        "GOMODCACHE": str(cache / "go" / "mod"),
    }
    subprocess.run(["go", "install", VEGETA_MODULE], env=env, check=True, timeout=900)


def fill(runs: int) -> tuple[int, str]:
    """A team with JOBS jobs and `runs` runs over the last 30 days, spread evenly over the jobs:
    every tenth run of each job failed, the others succeeded. Returns a job's id and an admin's
    API token."""
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import connection

    from apps.accounts.models import Role, Team
    from apps.accounts.services import membership_set, token_create
    from apps.jobs.models import Job

    team = Team.objects.create(name="bench")
    user = User.objects.create_user(username="bench")
    membership_set(team=team, user=user, role=Role.ADMIN)
    Team.objects.create(name="others")
    jobs = Job.objects.bulk_create(
        Job(team=team, name=f"bench job {n}", task_type="dts.noop", args={}) for n in range(JOBS)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO runs_run (id, job_id, trigger, state, attempt, task_type, args, queue,
                priority, created_at, queued_at, started_at, finished_at, worker, result, error,
                traceback)
            SELECT gen_random_uuid(), (%s::bigint[])[1 + n %% %s], 'schedule',
                CASE WHEN n / %s %% 10 = 0 THEN 'failed' ELSE 'succeeded' END, 1, 'dts.noop', '{}',
                'default', 5, at, at, at, at + interval '1 second', 'worker@host',
                '{"ok": true}', '', ''
            FROM generate_series(1, %s) AS n,
                LATERAL (SELECT now() - n * (interval '30 days' / %s)) AS t(at)
            """,
            [[job.id for job in jobs], JOBS, JOBS, runs, runs],
        )
        cursor.execute("VACUUM ANALYZE")
    _, secret = token_create(user=user, name="bench")
    return jobs[JOBS // 2].id, secret


def runs_table_bytes() -> tuple[int, int]:
    """The runs table's bytes: its heap (with TOAST) and its indexes."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_table_size('runs_run'), pg_indexes_size('runs_run')")
        heap, indexes = cursor.fetchone()
    return int(heap), int(indexes)


def server_start(port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--workers", "2"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    with (LOGS / "bench-api-uvicorn.log").open("w") as output:
        process = subprocess.Popen(command, cwd=REPO, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                time.sleep(2)  # both workers up
                return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise TimeoutError("uvicorn did not start in 60 s")


def attack(url: str, headers: dict[str, str], seconds: int, rate: float | None) -> dict[str, Any]:
    """vegeta's report of `seconds` of requests: at `rate` per second, or as many as
    SATURATION_CLIENTS clients can send (rate None)."""
    target = "\n".join([f"GET {url}", *(f"{key}: {value}" for key, value in headers.items())])
    pace = ["-rate", "0", "-max-workers", str(SATURATION_CLIENTS)]
    if rate is not None:
        pace = ["-rate", f"{max(1, round(rate))}/1s"]
    command = [str(VEGETA), "attack", "-duration", f"{seconds}s", "-timeout", "10s"]
    attacked = subprocess.run(
        [*command, "-keepalive=false", *pace],
        input=target.encode(),
        capture_output=True,
        check=True,
        timeout=seconds + 60,
    )
    reported = subprocess.run(
        [str(VEGETA), "report", "-type", "json"],
        input=attacked.stdout,
        capture_output=True,
        check=True,
        timeout=60,
    )
    report = json.loads(reported.stdout)
    return {
        "requests": report["requests"],
        "throughput": report["throughput"],
        "success": report["success"],
        "status_codes": report["status_codes"],
        "p50_ms": report["latencies"]["50th"] / 1e6,
        "p99_ms": report["latencies"]["99th"] / 1e6,
        "max_ms": report["latencies"]["max"] / 1e6,
    }


def page_check(peers: dict[str, tuple[str, dict[str, str]]], rows: int) -> None:
    """Both peers answer `rows` runs: a benchmark of an empty page would measure only the scan."""
    for peer, (url, headers) in peers.items():
        body = httpx.get(url, headers=headers, timeout=10).raise_for_status().json()
        answered = len(body["results"] if peer == "api" else body)
        if answered != rows:
            raise RuntimeError(f"{peer} answered {answered} runs, not {rows}: {url}")


def measure(
    peers: dict[str, tuple[str, dict[str, str]]], seconds: int, rounds: int
) -> dict[str, Any]:
    """Each peer's saturation in `rounds` alternating rounds (the order flips every round, so a
    slow spell of the machine falls on both), then its latency at half its median saturation."""
    for url, headers in peers.values():
        attack(url, headers, 3, None)  # warm: connections, caches, plans
    saturations: dict[str, list[dict[str, Any]]] = {peer: [] for peer in peers}
    for number in range(rounds):
        for peer in sorted(peers, reverse=number % 2 == 1):
            saturations[peer].append(attack(*peers[peer], seconds, None))
    results: dict[str, Any] = {}
    for peer, (url, headers) in peers.items():
        median = statistics.median(one["throughput"] for one in saturations[peer])
        results[peer] = {
            "saturation": saturations[peer],
            "median_throughput": median,
            "half": attack(url, headers, seconds, median / 2),
        }
    results["ratios"] = [
        api["throughput"] / plain["throughput"]
        for api, plain in zip(saturations["api"], saturations["plain"], strict=True)
    ]
    return results


def report(results: dict[str, Any]) -> str:
    runs = results["runs"]
    heap, indexes = results["runs_table_bytes"]["heap"], results["runs_table_bytes"]["indexes"]
    lines = [
        "# API benchmark: the REST API against a plain Django view",
        "",
        f"- Date: {results['date']}; command `python -m bench.api --runs {results['runs']} "
        f"--seconds {results['seconds']} --rounds {results['rounds']}`",
        f"- Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}; "
        f"{results['runs']:,} runs over {JOBS} jobs; uvicorn --workers 2, production settings; "
        "PostgreSQL and Redis on loopback; load from vegeta on the same machine, a new connection "
        "per request",
        f"- Saturation: {SATURATION_CLIENTS} clients sending as fast as answered, "
        f"{results['rounds']} rounds of {results['seconds']} s alternating the peers; latency: "
        "a constant rate of half the peer's median saturation throughput",
        f"- The runs table: {heap / 2**20:,.0f} MiB of rows and {indexes / 2**20:,.0f} MiB of "
        f"indexes, {heap / runs * 1e6 / 2**20:,.0f} + {indexes / runs * 1e6 / 2**20:,.0f} MiB per "
        "million runs (finished runs as the generator writes them: no log lines, attempts or "
        "events)",
        "",
        "| endpoint | peer | saturation per round (req/s) | median | at 50%: req/s | p50 (ms) "
        "| p99 (ms) | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for name, pair in results["endpoints"].items():
        for peer in ("api", "plain"):
            one = pair[peer]
            failed = sum(
                count
                for part in [*one["saturation"], one["half"]]
                for code, count in part["status_codes"].items()
                if not code.startswith("2")
            )
            rounds = ", ".join(f"{part['throughput']:.0f}" for part in one["saturation"])
            lines.append(
                f"| {name} | {'REST API' if peer == 'api' else 'plain view'} | {rounds} | "
                f"{one['median_throughput']:.0f} | {one['half']['throughput']:.0f} | "
                f"{one['half']['p50_ms']:.1f} | {one['half']['p99_ms']:.1f} | {failed} |"
            )
        ratio = statistics.median(pair["ratios"])
        p99 = pair["api"]["half"]["p99_ms"]
        rounds = ", ".join(f"{one:.2f}" for one in pair["ratios"])
        verdicts.append(
            f"- {name}: ratio {ratio:.2f} (median of rounds {rounds}; target ≥ {TARGET_RATIO}: "
            f"{'met' if ratio >= TARGET_RATIO else 'missed'}); p99 at 50% {p99:.1f} ms "
            f"(target ≤ {TARGET_P99_MS}: {'met' if p99 <= TARGET_P99_MS else 'missed'})"
        )
    return "\n".join([*lines, "", *verdicts]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    if options.runs < 100 or not 1 <= options.seconds <= 300 or not 1 <= options.rounds <= 9:
        parser.error(
            "--runs must be at least 100, --seconds between 1 and 300, --rounds between 1 and 9"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    vegeta_build()
    database_recreate(DATABASE)
    job_id, token = fill(options.runs)
    heap, indexes = runs_table_bytes()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    bearer = {"Authorization": f"Bearer {token}"}
    query = f"job={job_id}&state=succeeded"
    server = server_start(port)
    try:
        peers = {
            "run list": {
                "api": (f"{base}/api/v1/runs/?{query}", bearer),
                "plain": (f"{base}/bench/plain/runs/?{query}", {}),
            },
            "job detail": {
                "api": (f"{base}/api/v1/jobs/{job_id}/", bearer),
                "plain": (f"{base}/bench/plain/jobs/{job_id}/", {}),
            },
        }
        page_check(peers["run list"], PAGE)
        endpoints = {
            name: measure(pair, options.seconds, options.rounds) for name, pair in peers.items()
        }
    finally:
        server.terminate()
        server.wait(30)
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": options.runs,
        "seconds": options.seconds,
        "rounds": options.rounds,
        "runs_table_bytes": {"heap": heap, "indexes": indexes},
        "endpoints": endpoints,
    }
    # The default size's results are api.*; another's are api-<runs>.*, kept beside them.
    stem = "api" if options.runs == DEFAULT_RUNS else f"api-{options.runs}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    text = report(results)
    (RESULTS / f"{stem}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
