"""What job health costs with many jobs: the selector, and measuring its Prometheus series.

    python -m bench.job_health [--jobs 10000] [--runs-per-job 20] [--repeat 7]

On a fresh database (`dts_bench_job_health` on the server of `make services`): --jobs jobs in
one team, each with one schedule (two thirds intervals of 1 to 60 minutes, one third cron
expressions, 240 distinct ones in 5 time zones) and --runs-per-job runs of it (most
succeeded, some jobs failing, some whose latest fires were never started). Measures, as medians
of --repeat:

- `jobs_health` of every job (its queries and the health decided);
- one `JobHealthExposition.refresh()`: the above and the series rendered to text, which the
  scheduler's gauges thread does every 15 s, apart from the scrapes (`bench.metrics` times the
  scheduler's /metrics, which serves the text so rendered).

Writes bench/results/job-health.json and job-health.md.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.databases import REPO, database_recreate, database_url

DATABASE = "dts_bench_job_health"
RESULTS = REPO / "bench" / "results"
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--runs-per-job", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=7)
    options = parser.parse_args()

    env = {"DATABASE_URL": database_url(DATABASE), "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    database_recreate(DATABASE, env=env)
    os.environ.update(env)
    import django

    django.setup()
    now = datetime.now(UTC).replace(microsecond=0)
    seeded = seed(jobs=options.jobs, runs_per_job=options.runs_per_job, now=now)
    result = {
        "jobs": options.jobs,
        "runs": seeded,
        "python": platform.python_version(),
        **measure(now=now, repeat=options.repeat),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "job-health.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "job-health.md").write_text(report(result))
    print(report(result))


def seed(*, jobs: int, runs_per_job: int, now: datetime) -> int:
    from apps.accounts.models import Team
    from apps.jobs.models import Job
    from apps.runs.models import Run, RunTrigger
    from apps.runs.states import RunState
    from apps.schedules.models import Schedule, ScheduleKind

    team = Team.objects.create(name="bench")
    created = Job.objects.bulk_create(
        Job(team=team, name=f"job {index:05d}", task_type="dts.noop", args={})
        for index in range(jobs)
    )
    schedules = []
    for index, job in enumerate(created):
        if index % 3 == 2:
            # 240 distinct expressions: a minute, every 1 to 4 hours
            cron = f"{(index // 3) % 60} */{1 + (index // 180) % 4} * * *"
            schedule = Schedule(
                job=job,
                kind=ScheduleKind.CRON,
                cron_expression=cron,
                timezone=ZONES[index % len(ZONES)],
            )
        else:
            schedule = Schedule(
                job=job, kind=ScheduleKind.INTERVAL, interval_seconds=60 * (1 + index % 60)
            )
        schedules.append(schedule)
    Schedule.objects.bulk_create(schedules)
    # Created long ago, as a real platform's schedules were: every recent due time is expected.
    Schedule.objects.update(updated_at=now - timedelta(days=30))
    runs = []
    count = 0
    for index, schedule in enumerate(schedules):
        recurrence = schedule.recurrence()
        due = recurrence.latest_at_or_before(now)
        fires: list[datetime] = []
        while due is not None and len(fires) < runs_per_job:
            fires.append(due)
            due = recurrence.latest_at_or_before(due - timedelta(microseconds=1))
        for position, fire in enumerate(fires):
            never_started = index % 50 == 0 and position < 2  # its worker is gone
            failed = index % 25 == 1
            state = (
                RunState.QUEUED
                if never_started
                else RunState.FAILED
                if failed
                else RunState.SUCCEEDED
            )
            runs.append(
                Run(
                    job_id=schedule.job_id,
                    schedule=schedule,
                    scheduled_for=fire,
                    trigger=RunTrigger.SCHEDULE,
                    state=state,
                    task_type="dts.noop",
                    args={},
                    queued_at=fire,
                    started_at=None if never_started else fire + timedelta(seconds=1),
                    finished_at=None if never_started else fire + timedelta(seconds=2),
                )
            )
        if len(runs) >= 20_000:
            Run.objects.bulk_create(runs)
            count += len(runs)
            runs = []
    Run.objects.bulk_create(runs)
    count += len(runs)
    Run.objects.update(created_at=models_f("scheduled_for"))
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return count


def models_f(name: str) -> Any:
    from django.db.models import F

    return F(name)


def measure(*, now: datetime, repeat: int) -> dict[str, Any]:
    from collections import Counter

    from django.db import connection

    from apps.jobs import health
    from apps.jobs.metrics import JobHealthExposition
    from apps.jobs.models import Job
    from apps.jobs.selectors import jobs_health
    from apps.schedules import timing

    def caches_clear() -> None:
        health._cached_latest_at_or_before.cache_clear()
        timing.cached_next_after.cache_clear()

    selector, refresh = [], []
    for _ in range(repeat):
        caches_clear()
        started = time.perf_counter()
        statuses = jobs_health(jobs=Job.objects.all(), now=now)
        selector.append(time.perf_counter() - started)
    queries: list[str] = []

    def counted(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counted):
        jobs_health(jobs=Job.objects.all(), now=now)
    exposition = JobHealthExposition(now=lambda: now)
    for _ in range(repeat):
        caches_clear()
        started = time.perf_counter()
        exposition.refresh()
        refresh.append(time.perf_counter() - started)
    return {
        "queries": len(queries),
        "health": dict(Counter(status.health.value for status in statuses.values())),
        "selector_ms": round(statistics.median(selector) * 1000, 1),
        "refresh_ms": round(statistics.median(refresh) * 1000, 1),
        "text_bytes": len(exposition.text()),
    }


def report(result: dict[str, Any]) -> str:
    return (
        f"# Job health with {result['jobs']:,} jobs\n\n"
        f"{result['runs']:,} runs, one schedule per job; medians; Python {result['python']}.\n\n"
        "| what | ms |\n|---|---|\n"
        f"| `jobs_health` of every job ({result['queries']} queries) | {result['selector_ms']} |\n"
        f"| `JobHealthExposition.refresh()`: the above and the text rendered, every 15 s in the "
        f"scheduler's gauges thread | {result['refresh_ms']} |\n\n"
        f"Health: {result['health']}; the text is {result['text_bytes']:,} bytes, which the "
        "scheduler's /metrics serves as it is (`bench.metrics` times that scrape).\n"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
