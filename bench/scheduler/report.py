"""The conditions of a run, the targets, and the results as JSON and as a Markdown page."""

import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs in requirements (types-psutil)
from django.conf import settings

from bench import databases
from bench.scheduler import infra

Result = dict[str, Any]
PACKAGES = (
    "celery",
    "kombu",
    "django",
    "django-celery-beat",
    "redis",
    "psycopg2-binary",
    "cronsim",
)
DTS = "dts"
CELERY_BEAT = "django-celery-beat"
TARGET_SIZE = 10_000


def environment() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "packages": {name: importlib.metadata.version(name) for name in PACKAGES},
        "postgresql": databases.postgres_version(),
        "redis": infra.redis_version(),
        "dts_git": _git_state(),
        "dts_scheduler_settings": {
            "DTS_SCHEDULER_BATCH_SIZE": settings.DTS_SCHEDULER_BATCH_SIZE,
            "DTS_SCHEDULER_MAX_SLEEP_SECONDS": settings.DTS_SCHEDULER_MAX_SLEEP_SECONDS,
            "DTS_SCHEDULER_MISFIRE_GRACE_SECONDS": settings.DTS_SCHEDULER_MISFIRE_GRACE_SECONDS,
        },
    }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _git_state() -> dict[str, Any]:
    git = shutil.which("git")
    if git is None:
        return {}

    def run(*args: str) -> str:
        done = subprocess.run(
            [git, *args], cwd=infra.SOURCE, capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    changed = run("status", "--porcelain", "--", "apps", "workers", "config").splitlines()
    snapshot = os.environ.get("BENCH_COMMIT")
    return {
        "commit": snapshot or run("rev-parse", "HEAD"),
        "measured": "a snapshot of this commit" if snapshot else "the working tree",
        "uncommitted_changes_in_working_tree": changed,
    }


# Targets -----------------------------------------------------------------------------------------


def _find(
    results: list[Result], scenario: str, peer: str, size: int | None = None
) -> Result | None:
    for result in results:
        same = result.get("scenario") == scenario and result.get("peer") == peer
        if same and (size is None or result.get("size") == size):
            return result
    return None


def _p99(result: Result | None) -> float | None:
    """p99 lateness in ms, counting unpublished fires as late until the end (a lower bound)."""
    if result is None:
        return None
    figures = result.get("lateness_ms_counting_unpublished") or result.get("lateness_ms")
    return figures["p99"] if figures else None


def targets(results: list[Result]) -> list[dict[str, Any]]:
    dts = _find(results, "all_due", DTS, TARGET_SIZE)
    scaled = _find(results, "replicas", DTS, TARGET_SIZE)
    beat = _find(results, "all_due", CELERY_BEAT, TARGET_SIZE)
    dts_p99, beat_p99 = _p99(dts), _p99(beat)
    ratio = beat_p99 / dts_p99 if dts_p99 and beat_p99 else None
    rate = dts.get("publish_rate_per_s") if dts else None
    idle = max(
        (r for r in results if r.get("scenario") == "idle" and r.get("peer") == DTS),
        key=lambda r: r["size"],
        default=None,
    )
    idle_cpu = idle["cpu"]["percent_of_core"] if idle else None
    dups = _find(results, "duplicates", DTS)
    beat_dups = _find(results, "duplicates", CELERY_BEAT)
    return [
        _target("10k due in one minute: dts p99 lateness ≤ 1 s", dts_p99, "ms", dts_p99, 1000, "≤"),
        _target(
            "10k due in one minute: dts ≥ 10x better p99 than django-celery-beat",
            ratio,
            "x"
            + (" (at least: celery-beat did not finish)" if beat and not beat["finished"] else ""),
            ratio,
            10,
            "≥",
        ),
        _target("10k due: dts ≥ 10,000 fires/s, one replica", rate, "fires/s", rate, 10_000, "≥"),
        _scaling(dts_p99, scaled),
        _target(
            f"{idle['size'] if idle else '100k'} idle schedules: dts < 5% of a core",
            idle_cpu,
            "% of a core",
            idle_cpu,
            5,
            "<",
        ),
        _target(
            "3 dts replicas: 0 duplicate fires",
            dups["duplicates"] if dups else None,
            "duplicates",
            dups["duplicates"] if dups else None,
            0,
            "=",
        ),
        {
            "target": "django-celery-beat with 2 beats (reported, no target)",
            "value": beat_dups["duplicates"] if beat_dups else None,
            "unit": "duplicates",
            "met": None,
        },
    ]


def _scaling(one_replica_p99: float | None, scaled: Result | None) -> dict[str, Any]:
    """The 10k burst's p99 with several replicas, and its ratio to one replica's (no target)."""
    p99 = _p99(scaled)
    unit = "ms"
    if p99 and one_replica_p99:
        unit += f" ({p99 / one_replica_p99:.2f} x one replica's)"
    replicas = scaled["replicas"] if scaled else "several"
    return {
        "target": f"10k due: dts p99 lateness with {replicas} replicas (reported, no target)",
        "value": None if p99 is None else round(p99, 2),
        "unit": unit,
        "met": None,
    }


def _target(
    name: str, value: float | None, unit: str, measured: float | None, bound: float, op: str
) -> dict[str, Any]:
    checks = {
        "≤": lambda v: v <= bound,
        "≥": lambda v: v >= bound,
        "<": lambda v: v < bound,
        "=": lambda v: v == bound,
    }
    met = None if measured is None else bool(checks[op](measured))
    shown = None if value is None else round(value, 2)
    return {"target": name, "value": shown, "unit": unit, "bound": f"{op} {bound}", "met": met}


# Output -------------------------------------------------------------------------------------------


def write(path_stem: Path, report: dict[str, Any]) -> tuple[Path, Path]:
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    json_path = path_stem.with_suffix(".json")
    markdown_path = path_stem.with_suffix(".md")
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    markdown_path.write_text(markdown(report))
    return json_path, markdown_path


def markdown(report: dict[str, Any]) -> str:
    results: list[Result] = report["results"]
    parts = [
        "# Scheduler benchmark: dts vs django-celery-beat\n",
        _conditions(report["conditions"]),
        "## Targets\n",
        _table(
            ["target", "measured", "bound", "met"],
            [
                [t["target"], _fmt(t["value"]) + " " + t["unit"], t.get("bound", "—"), _met(t)]
                for t in report["targets"]
            ],
        ),
    ]
    sections = [
        ("all_due", "1. N schedules all due in the same minute (`* * * * *`, first due minute)"),
        ("replicas", "1b. The same 10k burst, fired by several dts replicas"),
        ("spread", "2. N schedules spread over the hour (`m * * * *`, 2 consecutive due minutes)"),
        ("edits", "3. 10k due in one minute while one idle schedule is edited every second"),
        ("duplicates", "5. Replicas on one database: duplicate fires (1k every minute)"),
    ]
    for scenario, title in sections:
        rows = [r for r in results if r.get("scenario") == scenario]
        if rows:
            parts += [f"## {title}\n", _burst_table(rows)]
            if scenario == "edits":
                parts.append(_edits_table(rows))
    idle = [r for r in results if r.get("scenario") == "idle"]
    if idle:
        parts += ["## 4. Idle: N schedules, none due for months\n", _idle_table(idle)]
    skipped = report.get("skipped") or []
    if skipped:
        parts += ["## Not run, or failed\n", "\n".join(f"- {line}" for line in skipped) + "\n"]
    parts.append(_method())
    return "\n".join(parts)


def _conditions(conditions: dict[str, Any]) -> str:
    env = conditions["environment"]
    packages = ", ".join(f"{name} {version}" for name, version in env["packages"].items())
    git = env.get("dts_git") or {}
    dirty = git.get("uncommitted_changes_in_working_tree") or []
    lines = [
        f"- Date: {conditions['started_utc']} → {conditions['finished_utc']} "
        f"({conditions['duration_s'] / 60:.1f} min), command `{conditions['command']}`",
        f"- Machine: {env['cores']} cores, {env['cpu_model']}, {env['memory_gb']} GB RAM",
        f"- Load average (1/5/15 min) before: {conditions['load_average_before']}, "
        f"after: {conditions['load_average_after']} (shared machine: other work may have run)",
        f"- Python {env['python']}; {packages}",
        f"- PostgreSQL {env['postgresql']} (127.0.0.1:55432), Redis {env['redis']} "
        "(127.0.0.1:56379), both on loopback",
        f"- dts: {git.get('measured', '?')} `{git.get('commit', '?')[:12]}`"
        + (f" (the working tree had {len(dirty)} uncommitted change(s))" if dirty else "")
        + "; "
        + ", ".join(f"{name}={value}" for name, value in env["dts_scheduler_settings"].items()),
        f"- Sizes {', '.join(f'{size:,}' for size in conditions['sizes'])}",
        "- Observation per scenario: "
        + "; ".join(f"{name}: {text}" for name, text in conditions["caps"].items()),
        f"- Peers ran {conditions['peers_run']}",
    ]
    return "## Conditions\n\n" + "\n".join(lines) + "\n"


def _burst_table(rows: list[Result]) -> str:
    headers = [
        "N",
        "scheduler",
        "repl.",
        "published / expected",
        "dup.",
        "lateness p50 / p99 / max (ms)",
        "fires/s",
        "dts created_at - due p50 / p99 (ms)",
        "CPU % of a core (s)",
        "PostgreSQL CPU %",
        "peak RSS (MB)",
        "ready after (s)",
        "notes",
    ]
    body = []
    for r in rows:
        own = (r.get("own") or {}).get("lateness_ms")
        body.append(
            [
                f"{r['size']:,}",
                r["peer"],
                str(r["replicas"]),
                f"{r['published']:,} / {r['expected']:,}",
                str(r["duplicates"]),
                _lateness(r["lateness_ms"]),
                _fmt(r["publish_rate_per_s"]),
                _lateness(own, keys=("p50", "p99")) if own else "—",
                f"{_fmt(r['cpu']['percent_of_core'])} ({_fmt(r['cpu']['seconds'])})",
                _fmt(r["servers_cpu_percent_of_core"]["postgres"]),
                _fmt(r["peak_rss_mb"]),
                _fmt(r.get("ready_s")),
                _burst_notes(r),
            ]
        )
    return _table(headers, body)


def _burst_notes(r: Result) -> str:
    notes = []
    if not r["finished"]:
        censored = r["lateness_ms_counting_unpublished"]
        notes.append(
            f"**did not finish**: {100 * r['published_fraction']:.1f}% published in "
            f"{r['observed_s']:.0f} s; p99 ≥ {_fmt(censored['p99'])} ms counting the unpublished"
        )
    skipped = (r.get("own") or {}).get("skipped_fires_recorded")
    if skipped:
        notes.append(f"dts recorded {skipped:,} fires as missed (misfire grace passed)")
    if r.get("later_fires"):
        notes.append(f"{r['later_fires']:,} fires of later minutes")
    if r.get("unexpected"):
        notes.append(f"{r['unexpected']:,} unexpected messages")
    notes += r.get("notes", [])
    return "; ".join(notes) or ""


def _edits_table(rows: list[Result]) -> str:
    headers = ["scheduler", "edits", "took effect", "edit → first fire p50 / max (ms)", "errors"]
    body = []
    for r in rows:
        edits = r.get("edits") or {}
        effect = edits.get("effect_ms")
        body.append(
            [
                r["peer"],
                str(edits.get("edits", 0)),
                str(edits.get("took_effect", 0)),
                _lateness(effect, keys=("p50", "max")) if effect else "—",
                str(len(edits.get("errors", []))),
            ]
        )
    return (
        "Time until an edit takes effect (commit → first message of the edited schedule):\n\n"
        + (_table(headers, body))
    )


def _idle_table(rows: list[Result]) -> str:
    headers = [
        "N",
        "scheduler",
        "load (s)",
        "window (s)",
        "CPU % of a core",
        "RSS at ready (MB)",
        "peak RSS (MB)",
        "PostgreSQL CPU %",
        "messages",
        "notes",
    ]
    body = [
        [
            f"{r['size']:,}",
            r["peer"],
            _fmt(r.get("ready_s")),
            _fmt(r["cpu"]["window_s"]),
            _fmt(r["cpu"]["percent_of_core"]),
            _fmt(r["rss_ready_mb"]),
            _fmt(r["peak_rss_mb"]),
            _fmt(r["servers_cpu_percent_of_core"]["postgres"]),
            str(r["messages"]),
            "; ".join(r.get("notes", [])),
        ]
        for r in rows
    ]
    return _table(headers, body)


def _method() -> str:
    return """## How it was measured

- Each scheduler runs as real `celery -A workers beat` process(es) started and stopped by the
  harness, on its own database (a fresh copy of a migrated template per trial) and its own Redis
  database. Schedules are bulk-created before the scheduler starts, first due at a whole minute
  that the scheduler reaches loaded and idle ("ready after" = start → CPU quiet).
- Lateness = when a message lands in Redis - its due time: a collector thread in the harness pops
  the queue's lists continuously (`default` and kombu's priority lists `default\x06\x16N`, where
  dts's messages go: LPOP of up to 500 each in one round trip, else BLPOP 50 ms) and stamps each
  message with `time.time()` on arrival. A dts message is matched to its run (run id → schedule and
  `scheduled_for`); a django-celery-beat message to its periodic task (`kwargs.index`), and to the
  earliest due time of that task not yet fired.
- Fires/s = fires published / the time from the due time to the last message of that due time
  (the JSON also has the rate from the first message, which leaves out the time to the first one).
  CPU = the beat processes' user+system time over the observation (from the due time to the last
  expected message + a short settle, or the cap), as % of one core, summed over replicas; peak
  RSS = VmHWM (of the largest replica).
  PostgreSQL CPU is the whole server's (all sessions, anyone's). The JSON also has the CPU of
  every other process on the machine over the same window (`others_cpu_percent_of_core`), named
  in the notes when above 20% of a core.
- Edits (scenario 3): from 5 s before the due minute, one idle schedule a second is switched to
  fire every second through each peer's own path (dts: `schedule_update` to interval 1 s, which
  NOTIFYs its beats; django-celery-beat: saving the PeriodicTask with an every-second
  IntervalSchedule, which bumps `PeriodicTasks.last_update`). Effect = the edited schedule's first
  message - the edit's commit. Part of it is the schedule's own wait: dts's 1 s interval is
  anchored on whole seconds (0..1 s away, edits are spread over the second), django-celery-beat's
  first fire is 1 s after the save.
- A scheduler that has not published everything by the cap is stopped ("did not finish"); its
  p99 "counting the unpublished" treats every missing fire as late until the cap: a lower bound.
- dts's own record: `created_at` (the time of the transaction that fired the run) minus
  `scheduled_for`.
- Idle schedules use `0 * 1 M *` (M six months ahead) rather than `0 0 1 1 *`: django-celery-beat
  2.9 skips loading crontabs whose numeric hour is more than 2 h away from now, so a numeric hour
  would make it idle by not holding the schedules at all.
- One job per dts schedule (as each periodic task of django-celery-beat is its own task), task
  `dts.noop` with `{}`; periodic tasks run `bench.noop` with `{"index": i}` on queue `default`.
  Nothing consumes the queues except the collector. Both beats log at WARNING.
- dts's beats run with `DTS_QUEUED_CHECK_AFTER_SECONDS=86400`: its check for queued runs the broker
  lost would otherwise take every message the collector popped (with no worker ever starting the
  run) for a lost one and publish it again, a harness artifact counted as duplicates.
"""


def _table(headers: list[str], rows: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _lateness(
    figures: dict[str, float] | None, keys: tuple[str, ...] = ("p50", "p99", "max")
) -> str:
    if not figures:
        return "—"
    return " / ".join(_fmt(figures[key]) for key in keys)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _met(target: dict[str, Any]) -> str:
    return {True: "yes", False: "**no**", None: "—"}[target["met"]]
