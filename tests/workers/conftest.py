"""The fault tests' cluster: workers on the "faults" queue and a scheduler, started per test with
short heartbeats, and everything they started stopped or killed at the end."""

import subprocess
import time

import psutil
import pytest

from apps.jobs.services import job_create
from apps.runs.models import Run
from tests.conftest import start_celery, stop_process
from tests.factories import TeamFactory
from tests.workers.operator_tasks import ledger, ledger_clear, ledger_key

FAST = {
    "DTS_WORKER_HEARTBEAT_SECONDS": "1",
    "DTS_WORKER_HEARTBEAT_TIMEOUT": "6",
    "DTS_CANCEL_GRACE_SECONDS": "2",
    "DTS_QUEUED_CHECK_AFTER_SECONDS": "5",
    "DTS_BROKER_CHECK_EVERY_SECONDS": "5",
}


@pytest.fixture
def cluster(tmp_path):
    """Start workers and a scheduler on demand; everything is stopped (or killed) at the end."""
    ledger_clear()
    processes: list[subprocess.Popen] = []

    class Cluster:
        def worker(
            self, name: str, concurrency: int = 1, env: dict[str, str] | None = None
        ) -> subprocess.Popen:
            process = start_celery(
                "worker",
                *("--queues", "faults", "--concurrency", str(concurrency), "--pool", "prefork"),
                *("--without-mingle", "--without-gossip", "--hostname", f"{name}@%h"),
                log=tmp_path / f"{name}.log",
                env=FAST | (env or {}),
            )
            processes.append(process)
            return process

        def scheduler(self, env: dict[str, str] | None = None) -> subprocess.Popen:
            process = start_celery(
                "beat",
                *("--scheduler", "workers.scheduler:DatabaseScheduler"),
                *("--pidfile", str(tmp_path / "beat.pid")),
                log=tmp_path / "beat.log",
                env=FAST | (env or {}),
            )
            processes.append(process)
            return process

    yield Cluster()
    for process in processes:
        for child in (
            psutil.Process(process.pid).children(recursive=True) if process.poll() is None else []
        ):
            child.kill()
        stop_process(process, timeout=10)


def job(name, task_type, args, **policy):
    return job_create(
        team=TeamFactory(), name=name, task_type=task_type, args=args, queue="faults", **policy
    )


def wait_for_state(run_id, state, timeout=30) -> Run:
    deadline = time.monotonic() + timeout
    while (run := Run.objects.get(id=run_id)).state != state:
        assert time.monotonic() < deadline, (
            f"run {run_id} is {run.state}, not {state}, after {timeout} s"
        )
        time.sleep(0.1)
    return run


def wait_for_executions(key: str, count: int, timeout: float = 30) -> None:
    """Wait until the ledger counts `count` executions of `key`. A run is recorded running just
    before its task's body starts: a process killed in between had executed nothing yet."""
    deadline = time.monotonic() + timeout
    while executions(key) < count:
        assert time.monotonic() < deadline, f"{key}: {executions(key)} executions after {timeout} s"
        time.sleep(0.05)


def pool_process(worker: subprocess.Popen) -> psutil.Process:
    (child,) = psutil.Process(worker.pid).children()
    return child


def executions(key: str) -> int:
    return int(ledger().get(ledger_key(key)) or 0)
