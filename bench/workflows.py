"""A 100-step fan-out and fan-in of no-op steps: dts's workflow against the same 100 no-op runs
triggered alone (what the graph costs) and a Celery chord of 99 no-op tasks and a callback with
django-celery-results on PostgreSQL (the peer), in the same run on this machine.

    python -m bench.workflows [--repeats 10] [--rounds 3]

Shapes: the workflow is 99 steps that depend on none and one that depends on all 99; the chord
is the same (a header of 99 tasks, a callback). Every peer: one worker process with 2 prefork
processes, the same Redis and PostgreSQL on loopback, dts's Celery settings; dts also runs its
scheduler, whose advancer moves the workflow on (docs/workflows.md). Each measurement is
timed from the trigger (dts: the workflow run recorded and its first 99 runs published; alone:
100 runs inserted queued with their events, then published; the chord: `apply_async`) to the last
step's end as recorded (dts: the last run's `finished_at`; the chord: the callback's time noted in
Redis). Each round measures every peer `--repeats` times, in a rotated order; the figures are the
medians and 90th percentiles of all of them, with the machine's busy CPU per step.

Goals (issue 23): the workflow within 20% of the runs alone; faster than the chord.

Writes bench/results/workflows.json and workflows.md. Bounded: every wait has a deadline.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import redis

from bench.databases import REPO, database_recreate
from bench.execution import (
    DEADLINE_SECONDS,
    LOGS,
    RESULTS,
    RESULTS_PEER_DATABASE,
    RESULTS_PEER_ENV,
    child_environ,
    cpu_busy_seconds,
    percentile,
    start,
    start_worker,
    stop,
    wait_until,
)

DATABASE = "dts_bench_workflows"
BROKER = "redis://127.0.0.1:56379/11"
STEPS = 100
WARM_UP = 3
OVERHEAD_GOAL = 0.20

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ["DATABASE_URL"] = f"postgres://dts:dts@127.0.0.1:55432/{DATABASE}"
os.environ["CELERY_BROKER_URL"] = BROKER


def measure_dts(repeats: int) -> dict[str, list[float]]:
    """The workflow's and the runs alone's seconds, alternated, `repeats` each."""
    import django

    django.setup()
    from django.db import transaction
    from django.utils import timezone

    from apps.accounts.models import Team
    from apps.events.outbox import events_record
    from apps.jobs.models import Job
    from apps.jobs.services import job_create
    from apps.runs.models import Run
    from apps.runs.services.publish import run_queued_event, runs_publish
    from apps.runs.states import TERMINAL_STATES
    from apps.workflows.models import Workflow, WorkflowRun, WorkflowRunState
    from apps.workflows.services import workflow_create, workflow_trigger

    team, _ = Team.objects.get_or_create(name="bench")
    job = Job.objects.filter(team=team, name="noop").first() or job_create(
        team=team, name="noop", task_type="dts.noop", args={}
    )
    workflow = Workflow.objects.filter(team=team, name="fan").first() or workflow_create(
        team=team,
        name="fan",
        steps=[
            *({"name": f"branch-{n}", "job": job} for n in range(STEPS - 1)),
            {"name": "join", "job": job, "depends_on": [f"branch-{n}" for n in range(STEPS - 1)]},
        ],
    )

    def last_end(runs: Any) -> float:
        """When the last of the (ended) runs ended, as recorded."""
        return max(end.timestamp() for end in runs.values_list("finished_at", flat=True) if end)

    def workflow_once() -> tuple[float, float]:
        busy, started = cpu_busy_seconds(), time.time()
        run = workflow_trigger(workflow=workflow)
        figures["workflow_trigger"].append(time.time() - started)
        ended = WorkflowRun.objects.filter(id=run.id).exclude(state=WorkflowRunState.RUNNING)
        wait_until(ended.exists, "the workflow run")
        if ended.get().state != WorkflowRunState.SUCCEEDED:
            raise RuntimeError(f"The workflow run {run.id} did not succeed.")
        join = Run.objects.get(workflow_step__workflow_run=run, workflow_step__name="join")
        branches = Run.objects.filter(workflow_run=run).exclude(id=join.id)
        queued = join.queued_at.timestamp() if join.queued_at else float("nan")
        figures["join_wait"].append(queued - last_end(branches))
        return last_end(Run.objects.filter(workflow_run=run)) - started, cpu_busy_seconds() - busy

    def alone_once() -> tuple[float, float]:
        busy, started = cpu_busy_seconds(), time.time()
        now = timezone.now()
        with transaction.atomic():
            queued = Run.objects.bulk_create(
                Run(job=job, trigger="api", task_type="dts.noop", args={}, queued_at=now)
                for _ in range(STEPS)
            )
            events_record(run_queued_event(run, time=now) for run in queued)
        runs_publish(runs=queued)
        ids = [run.id for run in queued]
        done = Run.objects.filter(id__in=ids, state__in=TERMINAL_STATES)
        wait_until(lambda: done.count() == STEPS, "the runs alone")
        return last_end(done) - started, cpu_busy_seconds() - busy

    worker = start_worker(
        "workers", LOGS / "workflows-dts-worker.log", env={"DTS_LOG_LEVEL": "WARNING"}
    )
    scheduler = start(
        [
            *(sys.executable, "-m", "celery", "-A", "workers", "beat", "--loglevel", "WARNING"),
            *("--scheduler", "workers.scheduler:DatabaseScheduler"),
            *("--pidfile", str(LOGS / "workflows-dts-scheduler.pid")),
        ],
        env=child_environ() | {"DTS_LOG_LEVEL": "WARNING"},
        log_name="workflows-dts-scheduler.log",
    )
    figures: dict[str, list[float]] = {
        "workflow": [],
        "alone": [],
        "workflow_cpu": [],
        "alone_cpu": [],
        # Parts of the workflow's time: its trigger (recording the workflow run and its first
        # runs, and publishing them), and from the last branch's end to the join queued.
        "workflow_trigger": [],
        "join_wait": [],
    }
    try:
        for _ in range(WARM_UP):
            workflow_once()
            alone_once()
        for index in range(repeats):
            order = [("workflow", workflow_once), ("alone", alone_once)]
            for name, once in order if index % 2 == 0 else reversed(order):
                seconds, busy = once()
                figures[name].append(seconds)
                figures[f"{name}_cpu"].append(busy)
    finally:
        stop(scheduler)
        stop(worker)
    return figures


def measure_chord(repeats: int) -> dict[str, list[float]]:
    """The chord's seconds, `repeats` of them, measured by a process of its own: sending a chord
    takes the result backend's database (the peer's), where this one has dts's."""
    worker = start_worker(
        "bench.celery_results", LOGS / "workflows-chord-worker.log", env=RESULTS_PEER_ENV
    )
    try:
        command = [sys.executable, "-m", "bench.workflows", "--chord-repeats", str(repeats)]
        answer = subprocess.run(
            command,
            cwd=REPO,
            env=child_environ() | RESULTS_PEER_ENV,
            capture_output=True,
            text=True,
            timeout=DEADLINE_SECONDS * (repeats + WARM_UP),
            check=True,
        )
    finally:
        stop(worker)
    return dict(json.loads(answer.stdout))


def chord_measured(repeats: int) -> dict[str, list[float]]:
    """In the process measure_chord starts, on the peer's settings and database."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings_celery_results"
    os.environ.update(RESULTS_PEER_ENV)
    import django

    django.setup()
    from celery import chord

    from bench.bare_celery import probe
    from bench.celery_results import chord_done, noop

    def once() -> tuple[float, float]:
        probe.delete("bench:chord")
        busy, started = cpu_busy_seconds(), time.time()
        chord(noop.s(started) for _ in range(STEPS - 1))(chord_done.s())
        wait_until(lambda: probe.llen("bench:chord") > 0, "the chord's callback")
        done_at = float(probe.lindex("bench:chord", 0) or "nan")
        return done_at - started, cpu_busy_seconds() - busy

    figures: dict[str, list[float]] = {"chord": [], "chord_cpu": []}
    for _ in range(WARM_UP):
        once()
    for _ in range(repeats):
        seconds, busy = once()
        figures["chord"].append(seconds)
        figures["chord_cpu"].append(busy)
    return figures


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "p90": percentile(values, 0.9)}


def report(results: dict[str, Any]) -> str:
    medians = {name: summary(values)["median"] for name, values in results["seconds"].items()}
    overhead = medians["workflow"] / medians["alone"] - 1
    pairs = zip(results["seconds"]["workflow"], results["seconds"]["alone"], strict=True)
    paired = statistics.median(workflow / alone for workflow, alone in pairs) - 1
    lines = [
        "# Workflows: a 100-step fan-out and fan-in",
        "",
        f"{results['date']}, {results['rounds']} rounds of {results['repeats']} repeats per peer; "
        f"load before {results['load_before']}, after {results['load_after']}. "
        "`python -m bench.workflows`",
        "",
        "| peer | median s | p90 s | CPU ms per step (median) |",
        "|---|---|---|---|",
    ]
    for name, label in PEERS.items():
        times = summary(results["seconds"][name])
        cpu = statistics.median(results["cpu_seconds"][name]) * 1000 / STEPS
        lines.append(f"| {label} | {times['median']:.3f} | {times['p90']:.3f} | {cpu:.2f} |")
    faster = medians["chord"] / medians["workflow"]
    trigger, join = (summary(results["workflow_parts_seconds"][part]) for part in PARTS)
    lines += [
        "",
        f"Of the workflow's time: its trigger {trigger['median'] * 1000:.0f} ms (median), and "
        f"from the last branch's end to the join queued {join['median'] * 1000:.0f} ms.",
        "",
        f"- the graph's overhead over the runs alone: **{overhead:+.0%}** "
        f"(goal at most +{OVERHEAD_GOAL:.0%}: {'met' if overhead <= OVERHEAD_GOAL else 'NOT met'})",
        f"- the same, as the median of each workflow's time over the runs alone measured next to "
        f"it (the pairs alternate, so the machine's drift between them cancels): **{paired:+.0%}** "
        f"({'met' if paired <= OVERHEAD_GOAL else 'NOT met'})",
        f"- the chord's time over the workflow's: **{faster:.2f}x** "
        f"(goal above 1: {'met' if faster > 1 else 'NOT met'})",
        "",
        "Each time ends at the last step's end as recorded: dts's last run's `finished_at` in "
        "PostgreSQL, the chord's callback's own clock.",
    ]
    return "\n".join(lines) + "\n"


PARTS = ("workflow_trigger", "join_wait")
PEERS = {
    "workflow": "dts workflow (99 steps, then 1 depending on all)",
    "alone": "the same 100 dts runs alone",
    "chord": "Celery chord, django-celery-results",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chord-repeats", type=int, help=argparse.SUPPRESS)  # measure_chord's
    options = parser.parse_args()
    if options.chord_repeats:
        print(json.dumps(chord_measured(options.chord_repeats)))
        return
    if min(options.repeats, options.rounds) < 1:
        parser.error("--repeats and --rounds must be at least 1")
    RESULTS.mkdir(parents=True, exist_ok=True)
    database_recreate(DATABASE)
    database_recreate(RESULTS_PEER_DATABASE, env=RESULTS_PEER_ENV)
    seconds: dict[str, list[float]] = {name: [] for name in PEERS}
    cpu: dict[str, list[float]] = {name: [] for name in PEERS}
    parts: dict[str, list[float]] = {}
    load_before = [round(load, 2) for load in os.getloadavg()]
    for number in range(options.rounds):
        measures = [lambda: measure_dts(options.repeats), lambda: measure_chord(options.repeats)]
        for measure in measures if number % 2 == 0 else reversed(measures):
            redis.Redis.from_url(BROKER).flushdb()
            for name, values in measure().items():
                if name in PARTS:
                    parts.setdefault(name, []).extend(values)
                    continue
                target = cpu if name.endswith("_cpu") else seconds
                target[name.removesuffix("_cpu")].extend(values)
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "rounds": options.rounds,
        "repeats": options.repeats,
        "steps": STEPS,
        "load_before": load_before,
        "load_after": [round(load, 2) for load in os.getloadavg()],
        "seconds": seconds,
        "cpu_seconds": cpu,
        "workflow_parts_seconds": parts,
    }
    (RESULTS / "workflows.json").write_text(json.dumps(results, indent=2) + "\n")
    text = report(results)
    (RESULTS / "workflows.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
