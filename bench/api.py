"""The REST API against a plain Django view, on a database of 1 million runs.

    python -m bench.api [--runs 1000000] [--seconds 15]

Both are served by the production server: uvicorn with 2 worker processes, production settings
(DEBUG off; bench/settings_api.py adds the plain views, bench/api_urls.py). The API answers as a
team admin with an API token (authentication, team scoping, throttling counted in Redis, the
serializer); the plain view is `JsonResponse(list(queryset.values(...)))` of the same rows.

- run list: a page of 50 of one job's succeeded runs, newest first;
- job detail: one job.

For each, vegeta (Go, built on first use into ~/.cache/dts/bin) first finds the saturation
throughput (as many requests as 8 connections can send for --seconds), then sends requests at 50%
of it for --seconds, at a constant rate, for the latency percentiles. Writes bench/results/api.json
and api.md. Bounded: every step has a duration, every wait a deadline.
"""

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
LOGS = Path(tempfile.gettempdir())
DATABASE = "dts_bench_api"
POSTGRES = "postgres://dts:dts@127.0.0.1:55432"
VEGETA = Path(os.environ.get("DTS_CACHE_DIR", Path.home() / ".cache" / "dts")) / "bin" / "vegeta"
VEGETA_MODULE = "github.com/tsenart/vegeta/v12@v12.13.0"
JOBS = 100
SATURATION_CONNECTIONS = 8
TARGET_RATIO = 0.7
TARGET_P99_MS = 50

SERVER_ENV = {
    "DJANGO_SETTINGS_MODULE": "bench.settings_api",
    "DJANGO_SECRET_KEY": "bench-only-" + "k" * 50,
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
    "DJANGO_SECURE_SSL_REDIRECT": "false",
    "DATABASE_URL": f"{POSTGRES}/{DATABASE}",
    "CELERY_BROKER_URL": "redis://127.0.0.1:56379/12",
    "DTS_CACHE_URL": "redis://127.0.0.1:56379/13",
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


def recreate_database() -> None:
    admin = psycopg2.connect(f"{POSTGRES}/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{DATABASE}"')
    admin.close()
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, check=True)


def fill(runs: int) -> tuple[int, str]:
    """A team with JOBS jobs and `runs` runs over the last 30 days; returns a job's id and an
    admin's API token."""
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
                CASE WHEN n %% 10 = 0 THEN 'failed' ELSE 'succeeded' END, 1, 'dts.noop', '{}',
                'default', 5, at, at, at, at + interval '1 second', 'worker@host',
                '{"ok": true}', '', ''
            FROM generate_series(1, %s) AS n,
                LATERAL (SELECT now() - n * (interval '30 days' / %s)) AS t(at)
            """,
            [[job.id for job in jobs], JOBS, runs, runs],
        )
        cursor.execute("VACUUM ANALYZE")
    _, secret = token_create(user=user, name="bench")
    return jobs[JOBS // 2].id, secret


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
    SATURATION_CONNECTIONS connections can send (rate None)."""
    target = "\n".join([f"GET {url}", *(f"{key}: {value}" for key, value in headers.items())])
    pace = ["-rate", "0", "-max-workers", str(SATURATION_CONNECTIONS)]
    if rate is not None:
        pace = ["-rate", f"{max(1, round(rate))}/1s"]
    attacked = subprocess.run(
        [str(VEGETA), "attack", "-duration", f"{seconds}s", "-timeout", "10s", *pace],
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


def measure(url: str, headers: dict[str, str], seconds: int) -> dict[str, Any]:
    attack(url, headers, 3, None)  # warm: connections, caches, plans
    saturation = attack(url, headers, seconds, None)
    half = attack(url, headers, seconds, saturation["throughput"] / 2)
    return {"saturation": saturation, "half": half}


def report(results: dict[str, Any]) -> str:
    lines = [
        "# API benchmark: the REST API against a plain Django view",
        "",
        f"- Date: {results['date']}; command `python -m bench.api --runs {results['runs']} "
        f"--seconds {results['seconds']}`",
        f"- Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}; "
        f"{results['runs']:,} runs over {JOBS} jobs; uvicorn --workers 2, production settings; "
        "PostgreSQL and Redis on loopback; load from vegeta on the same machine",
        f"- Saturation: {SATURATION_CONNECTIONS} connections sending as fast as answered; latency: "
        "a constant rate of half the peer's own saturation throughput",
        "",
        "| endpoint | peer | saturation (req/s) | ratio to plain | at 50%: req/s | p50 (ms) "
        "| p99 (ms) | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for name, pair in results["endpoints"].items():
        plain = pair["plain"]["saturation"]["throughput"]
        for peer in ("api", "plain"):
            one = pair[peer]
            ratio = one["saturation"]["throughput"] / plain
            failed = sum(
                count
                for part in ("saturation", "half")
                for code, count in one[part]["status_codes"].items()
                if not code.startswith("2")
            )
            lines.append(
                f"| {name} | {'REST API' if peer == 'api' else 'plain view'} | "
                f"{one['saturation']['throughput']:.0f} | {ratio:.2f} | "
                f"{one['half']['throughput']:.0f} | {one['half']['p50_ms']:.1f} | "
                f"{one['half']['p99_ms']:.1f} | {failed} |"
            )
        api = pair["api"]
        ratio = api["saturation"]["throughput"] / plain
        verdicts.append(
            f"- {name}: ratio {ratio:.2f} (target ≥ {TARGET_RATIO}: "
            f"{'met' if ratio >= TARGET_RATIO else 'missed'}); p99 at 50% "
            f"{api['half']['p99_ms']:.1f} ms (target ≤ {TARGET_P99_MS}: "
            f"{'met' if api['half']['p99_ms'] <= TARGET_P99_MS else 'missed'})"
        )
    return "\n".join([*lines, "", *verdicts]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=15)
    options = parser.parse_args()
    if options.runs < 100 or not 1 <= options.seconds <= 300:
        parser.error("--runs must be at least 100 and --seconds between 1 and 300")
    RESULTS.mkdir(parents=True, exist_ok=True)
    vegeta_build()
    recreate_database()
    job_id, token = fill(options.runs)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    bearer = {"Authorization": f"Bearer {token}"}
    query = f"job={job_id}&state=succeeded"
    server = server_start(port)
    try:
        endpoints = {
            "run list": {
                "api": measure(f"{base}/api/v1/runs/?{query}", bearer, options.seconds),
                "plain": measure(f"{base}/bench/plain/runs/?{query}", {}, options.seconds),
            },
            "job detail": {
                "api": measure(f"{base}/api/v1/jobs/{job_id}/", bearer, options.seconds),
                "plain": measure(f"{base}/bench/plain/jobs/{job_id}/", {}, options.seconds),
            },
        }
    finally:
        server.terminate()
        server.wait(30)
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": options.runs,
        "seconds": options.seconds,
        "endpoints": endpoints,
    }
    (RESULTS / "api.json").write_text(json.dumps(results, indent=2) + "\n")
    text = report(results)
    (RESULTS / "api.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
