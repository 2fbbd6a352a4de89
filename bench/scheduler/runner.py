"""The run: which trials, in what order, within what budget, and the report at the end."""

import argparse
import io
import os
import pstats
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from django.db import connections

from bench.scheduler import infra, inprocess, report
from bench.scheduler.mode import Mode
from bench.scheduler.peers import PEERS, DtsPeer, Peer
from bench.scheduler.trial import BurstSpec, Estimator, IdleSpec, Lane, run_burst, run_idle

RESULTS = infra.SOURCE / "bench" / "results"
EDITS_SIZE = 10_000
EDIT_TARGETS = 300
DUPLICATES_SIZE = 1_000
REPLICAS = {"dts": 3, "celery-beat": 2}
# The 10k burst again with this many dts replicas: how its lateness scales (django-celery-beat's
# replicas fire everything twice, so it has no such trial).
SCALING_REPLICAS = 3
SIDE_BY_SIDE = "side by side in the same minutes (--quick is a smoke test, not a comparison)"

Result = dict[str, Any]
Runner = Callable[[Any, list[Lane], Estimator, Path], list[Result]]


def plan(mode: Mode) -> list[tuple[Runner, BurstSpec | IdleSpec]]:
    """The trials, most important first (a run over its time budget skips the rest)."""
    largest, cap = max(mode.sizes), mode.cap_s
    chosen: dict[str, list[tuple[Runner, BurstSpec | IdleSpec]]] = {
        "all_due": [
            (run_burst, BurstSpec("all_due", "every_minute", size, cap_s=cap))
            for size in mode.sizes
        ],
        "replicas": [
            (
                run_burst,
                BurstSpec(
                    "replicas",
                    "every_minute",
                    min(EDITS_SIZE, largest),
                    cap_s=cap,
                    replicas={"dts": SCALING_REPLICAS},
                    peers=("dts",),
                ),
            )
        ],
        "edits": [
            (
                run_burst,
                BurstSpec(
                    "edits",
                    "every_minute",
                    min(EDITS_SIZE, largest),
                    cap_s=max(0.75 * cap, 45),
                    edits=EDIT_TARGETS,
                ),
            )
        ],
        "duplicates": [
            (
                run_burst,
                BurstSpec(
                    "duplicates",
                    "every_minute",
                    DUPLICATES_SIZE,
                    due_minutes=mode.duplicate_minutes,
                    cap_s=60 * (mode.duplicate_minutes - 1) + max(cap * 0.375, 30),
                    settle_s=5.0,
                    replicas=REPLICAS,
                ),
            )
        ],
        "idle": [(run_idle, IdleSpec("idle", largest, window_s=mode.idle_window_s))],
        "spread": [
            (
                run_burst,
                BurstSpec("spread", "spread", largest, due_minutes=2, cap_s=60 + cap * 0.375),
            )
        ],
    }
    trials = [item for name in mode.order if name in mode.scenarios for item in chosen[name]]
    if mode.quick:  # the 1k burst first, then the duplicate check, the 10k burst last
        trials.sort(key=lambda item: item[1].scenario == "all_due" and item[1].size > 1000)
    return trials


def log(text: str) -> None:
    print(f"[{datetime.now(tz=UTC):%H:%M:%S}] {text}", flush=True)


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    mode = Mode.of(args)
    signal.signal(signal.SIGTERM, _raise_exit)
    peers = [PEERS[slug]() for slug in args.peers.split(",")]
    started, load_before = time.time(), os.getloadavg()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dts-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    skipped: list[str] = []
    interrupted = False
    try:
        for peer in peers:
            if peer.prepare_template():
                log(f"migrated the template database of {peer.title}")
        if args.profile:
            return _profile(args.profile, mode, workdir)
        if args.in_process:
            output = args.output or RESULTS / f"scheduler-in-process-{args.in_process}"
            return inprocess.run(args.in_process, args.rounds, output.with_suffix(".json"))
        _trials(mode, peers, workdir, started, results, skipped)
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: stopping the schedulers, writing what was measured")
    finally:
        infra.processes_stop_all()
        for peer in peers:
            peer.drop()
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        if "BENCH_SNAPSHOT" in os.environ:
            shutil.rmtree(os.environ["BENCH_SNAPSHOT"], ignore_errors=True)
    finished = time.time()
    document = {
        "conditions": {
            "started_utc": _iso(started),
            "finished_utc": _iso(finished),
            "duration_s": round(finished - started, 1),
            "command": " ".join([".venv/bin/python -m bench.scheduler", *argv]),
            "interrupted": interrupted,
            "peers_run": SIDE_BY_SIDE if mode.quick else "one after the other, never together",
            "sizes": list(mode.sizes),
            "caps": _caps(plan(mode)),
            "load_average_before": [round(value, 2) for value in load_before],
            "load_average_after": [round(value, 2) for value in os.getloadavg()],
            "environment": report.environment(),
        },
        "targets": report.targets(results),
        "results": results,
        "skipped": skipped,
    }
    output = args.output or RESULTS / ("scheduler-quick" if mode.quick else "scheduler")
    json_path, markdown_path = report.write(output, document)
    log(f"wrote {json_path} and {markdown_path} in {(finished - started) / 60:.1f} min")
    return 130 if interrupted else 0


def _trials(
    mode: Mode,
    peers: list[Peer],
    workdir: Path,
    started: float,
    results: list[Result],
    skipped: list[str],
) -> None:
    estimator = Estimator()
    groups = [peers] if mode.quick else [[peer] for peer in peers]
    for runner, spec in plan(mode):
        for every in groups:
            group = [peer for peer in every if spec.peers is None or peer.slug in spec.peers]
            if not group:
                continue
            name = f"{spec.scenario} N={spec.size:,} {' + '.join(peer.title for peer in group)}"
            if time.time() - started + _worst_case_s(spec, len(group)) > mode.budget_min * 60:
                skipped.append(f"{name}: over the time budget")
                log(f"skip {name}: over the time budget")
                continue
            for attempt in (1, 2):
                log(f"{name} ..." + (" (again)" if attempt > 1 else ""))
                epoch = infra.services_epoch()
                try:
                    found = runner(spec, [Lane(peer) for peer in group], estimator, workdir)
                except Exception as error:  # a service restarted under us, say: record, go on
                    log(f"  failed: {error!r}")
                    infra.processes_stop_all()
                    connections.close_all()
                    skipped.append(f"{name}: attempt {attempt} failed: {error!r}"[:500])
                    continue
                if infra.services_epoch() != epoch and attempt == 1:
                    log("  PostgreSQL or Redis restarted during the trial: running it again")
                    skipped.append(f"{name}: attempt 1 discarded, PostgreSQL or Redis restarted")
                    continue
                for result in found:
                    results.append(result)
                    log("  " + _one_line(result))
                break


def _worst_case_s(spec: BurstSpec | IdleSpec, lanes: int) -> float:
    """A trial's longest likely duration: set-up of 100k takes ~30 s, loading up to a minute, and
    a burst waits up to a minute for its due minute, then runs to its cap."""
    setup = lanes * (5 + spec.size / 1000 * 0.3)
    if isinstance(spec, IdleSpec):
        return setup + 60 + spec.window_s
    return setup + 30 + 70 + spec.cap_s


def _caps(trials: list[tuple[Runner, BurstSpec | IdleSpec]]) -> dict[str, str]:
    caps = {}
    for _, spec in trials:
        if isinstance(spec, IdleSpec):
            caps[spec.scenario] = (
                f"{spec.window_s:.0f} s once loaded (loading: {spec.ready_cap_s:.0f} s)"
            )
        else:
            caps[spec.scenario] = (
                f"{spec.due_minutes} due minute(s), observed until all published + "
                f"{spec.settle_s:.0f} s or {spec.cap_s:.0f} s after the first"
            )
    return caps


def _one_line(result: Result) -> str:
    peer = f"{result['peer']} x{result['replicas']}"
    cpu = f"CPU {result['cpu']['percent_of_core']}% of a core, peak RSS {result['peak_rss_mb']} MB"
    if result["scenario"] == "idle":
        return f"{peer}: {cpu}, loaded in {result.get('ready_s')} s"
    lateness = result["lateness_ms"] or {}
    return (
        f"{peer}: {result['published']}/{result['expected']} published, "
        f"{result['duplicates']} dup, lateness p50 {lateness.get('p50')} p99 "
        f"{lateness.get('p99')} max {lateness.get('max')} ms, "
        f"{result['publish_rate_per_s']} fires/s, {cpu}"
    )


def _profile(size: int, mode: Mode, workdir: Path) -> int:
    """dts's beat under cProfile through one burst of `size`; its top functions to a text file."""
    profile = workdir / "dts.prof"
    spec = BurstSpec("profile", "every_minute", size, cap_s=mode.cap_s)
    log(f"profiling dts on {size:,} schedules due in one minute ...")
    (result,) = run_burst(spec, [Lane(DtsPeer(), profile_to=profile)], Estimator(), workdir)
    log("  " + _one_line(result))
    text = io.StringIO()
    commit = os.environ.get("BENCH_COMMIT", "the working tree")
    text.write(f"dts ({commit}) beat under cProfile: {size:,} schedules due in one minute\n")
    text.write(_one_line(result) + "\n(cProfile slows the process down: read the shares)\n")
    stats = pstats.Stats(str(profile), stream=text)
    stats.sort_stats("cumulative").print_stats(45)
    stats.print_callees(r"schedules_fire_due|runs_publish\b|send_task\b|bulk_create")
    stats.sort_stats("tottime").print_stats(30)
    path = RESULTS / f"profile-dts-{size}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.getvalue())
    log(f"wrote {path}")
    return 0


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).isoformat(timespec="seconds")
