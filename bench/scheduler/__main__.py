"""Benchmark of dts's scheduler side by side with django-celery-beat's DatabaseScheduler.

    .venv/bin/python -m bench.scheduler                 # the full run (about 25 minutes)
    .venv/bin/python -m bench.scheduler --quick         # a smoke run (about 3 minutes)
    .venv/bin/python -m bench.scheduler --sizes 1000,10000 --scenarios all_due,idle
    .venv/bin/python -m bench.scheduler --profile 10000 # cProfile of dts's beat on a 10k burst
    .venv/bin/python -m bench.scheduler --in-process 10000 --rounds 5  # CPU per fire, no beat

Needs the loopback services of `make services` (PostgreSQL 127.0.0.1:55432, Redis 127.0.0.1:56379)
and requirements/bench.txt. Uses only its own databases and Redis databases 8 and 9: dts_bench and
dts_bench_dcb are dropped at the end; their migrated templates (*_template) are kept for the next
run and migrated again when the migrations change.
Results: bench/results/scheduler.{json,md} (--quick: scheduler-quick.*; --in-process N:
scheduler-in-process-N.json).

It benchmarks the committed HEAD: it exports it (with this bench/ folder) to a temporary directory
and runs from there, so edits in progress in the working tree are not measured (--working-tree
measures them).
"""

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import django

from bench import databases
from bench.scheduler import infra
from bench.scheduler.mode import SCENARIOS


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scheduler", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1k and 10k all due, a short idle and duplicate check, peers side by side",
    )
    parser.add_argument(
        "--sizes",
        type=lambda text: tuple(int(part) for part in text.split(",")),
        help="schedule counts of scenario 1 (default 1000,10000,100000; --quick 1000,10000); "
        "the largest is also used by scenarios 2 and 4",
    )
    parser.add_argument(
        "--scenarios",
        type=lambda text: tuple(text.split(",")),
        help=f"any of {','.join(SCENARIOS)} (default all; --quick idle,all_due,duplicates)",
    )
    parser.add_argument("--peers", default="dts,celery-beat", help="default dts,celery-beat")
    parser.add_argument(
        "--cap", type=float, help="seconds a burst is observed after its due minute at most (120)"
    )
    parser.add_argument("--budget-minutes", type=float, help="start no trial after this (30)")
    parser.add_argument(
        "--profile", type=int, metavar="N", help="profile dts on an N burst instead"
    )
    parser.add_argument(
        "--in-process",
        type=int,
        metavar="N",
        help="fire N due schedules in this process instead: CPU per fire, no beat",
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds of --in-process (5)")
    parser.add_argument("--output", type=Path, help="results path without suffix")
    parser.add_argument("--workdir", type=Path, help="keep the beats' logs here (default: removed)")
    parser.add_argument(
        "--working-tree",
        action="store_true",
        help="benchmark the files as they are now rather than a snapshot of the committed HEAD",
    )
    args = parser.parse_args(argv)
    unknown = set(args.scenarios or ()) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return args


def configure_django() -> None:
    """The harness sees dts's benchmark database as default and django-celery-beat's as
    "celery_beat": never the databases of the test suite."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.scheduler.settings_harness"
    os.environ["DATABASE_URL"] = databases.database_url(infra.DTS_DATABASE)
    os.environ["BENCH_CELERY_BEAT_DATABASE_URL"] = databases.database_url(
        infra.CELERY_BEAT_DATABASE
    )
    os.environ["CELERY_BROKER_URL"] = infra.redis_url(infra.DTS_REDIS_DB)
    os.environ["DTS_LOG_LEVEL"] = "WARNING"
    django.setup()


def run_from_snapshot(argv: list[str]) -> None:
    """Re-run this command from a snapshot of the committed HEAD (plus this bench/ folder), so that
    files someone is in the middle of editing are never what the beats import."""
    git = shutil.which("git") or "git"
    commit = _git(git, "rev-parse", "HEAD").decode().strip()
    target = Path(tempfile.mkdtemp(prefix="dts-bench-src-"))
    with tarfile.open(fileobj=io.BytesIO(_git(git, "archive", "--format=tar", commit))) as tar:
        tar.extractall(target, filter="data")
    ignore = shutil.ignore_patterns("results", "__pycache__")
    shutil.copytree(infra.REPO / "bench", target / "bench", ignore=ignore, dirs_exist_ok=True)
    os.environ |= {"BENCH_SOURCE": str(infra.REPO), "BENCH_COMMIT": commit}
    os.environ["BENCH_SNAPSHOT"] = str(target)
    os.chdir(target)
    os.execv(sys.executable, [sys.executable, "-m", "bench.scheduler", *argv])  # noqa: S606


def _git(git: str, *args: str) -> bytes:
    return subprocess.run([git, *args], cwd=infra.REPO, capture_output=True, check=True).stdout


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    argv = argv if argv is not None else sys.argv[1:]
    if not args.working_tree and "BENCH_SNAPSHOT" not in os.environ:
        run_from_snapshot(argv)
    configure_django()
    from bench.scheduler import runner  # it imports models: only once Django is set up

    return runner.run(args, argv)


if __name__ == "__main__":
    sys.exit(main())
