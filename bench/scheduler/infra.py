"""What the scheduler benchmark drives on loopback: the peers' databases and Redis databases, a
collector on their queue, beat processes, and the CPU time they all use.

Nothing here imports Django models, so the harness can use it before Django is set up.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import psutil  # type: ignore[import-untyped]  # no stubs in requirements (types-psutil)
import redis

from bench import databases

REPO = databases.REPO
# When running from a snapshot of the committed code (see bench.scheduler), the repository it came
# from: results and git state belong there.
SOURCE = Path(os.environ.get("BENCH_SOURCE", REPO))
REDIS_URL = "redis://127.0.0.1:56379"
QUEUE = "default"
# The peers' own databases and Redis databases, apart from everything the test suite uses.
DTS_DATABASE, DTS_REDIS_DB = "dts_bench", 8
CELERY_BEAT_DATABASE, CELERY_BEAT_REDIS_DB = "dts_bench_dcb", 9
# How many messages the collector pops per list and round trip while the lists are not empty.
POP_BATCH = 500
# kombu's Redis transport keeps a message sent with priority N > 0 in the list "<queue>\x06\x16N".
KOMBU_PRIORITY_SEPARATOR = "\x06\x16"
KOMBU_PRIORITIES = range(1, 10)
STOP_TIMEOUT_S = 5.0

_started: list[subprocess.Popen[bytes]] = []


def queue_lists(queue: str) -> list[str]:
    """The Redis lists a kombu queue's messages wait in: the queue's, and one per priority."""
    return [queue, *(f"{queue}{KOMBU_PRIORITY_SEPARATOR}{n}" for n in KOMBU_PRIORITIES)]


def redis_url(db: int) -> str:
    return f"{REDIS_URL}/{db}"


def services_epoch() -> tuple[str, str]:
    """What changes when PostgreSQL or Redis restarts (others' tests restart them on purpose)."""
    redis_run_id = redis.Redis.from_url(redis_url(0)).info("server")["run_id"]
    return databases.postgres_started_at(), str(redis_run_id)


# Redis --------------------------------------------------------------------------------------------


def redis_flush(db: int) -> None:
    redis.Redis.from_url(redis_url(db)).flushdb()


def redis_version() -> str:
    return str(redis.Redis.from_url(redis_url(0)).info("server")["redis_version"])


class QueueCollector:
    """Pops a queue's Redis lists (one per priority) as fast as messages land in them, stamping
    each message with its arrival time.

    The lists are kept near empty, so the stamp (taken when a pop returns) is within a round trip
    of the moment the scheduler pushed the message. Parsing is left to the peer adapters, later.
    """

    def __init__(self, url: str, queue: str = QUEUE) -> None:
        self.lists = queue_lists(queue)
        self.arrivals: list[tuple[float, bytes]] = []
        self._client = redis.Redis.from_url(url)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"collector {url}", daemon=True)
        self._taken = 0
        self.connection_errors = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop, then take what is still in the list."""
        self._stop.set()
        self._thread.join()
        while self._pop(block_s=0):
            pass

    def take(self) -> list[tuple[float, bytes]]:
        """The arrivals since the last call."""
        end = len(self.arrivals)
        new = self.arrivals[self._taken : end]
        self._taken = end
        return new

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._pop(block_s=0.05)
            except redis.ConnectionError:  # Redis restarted: what it held is gone, go on
                self.connection_errors += 1
                time.sleep(0.1)

    def _pop(self, block_s: float) -> int:
        pipeline = self._client.pipeline(transaction=False)
        for name in self.lists:
            pipeline.lpop(name, POP_BATCH)
        batch = [raw for popped in pipeline.execute() if popped for raw in popped]
        if batch:
            stamp = time.time()
            self.arrivals.extend((stamp, raw) for raw in batch)
            return len(batch)
        if block_s > 0:
            popped = self._client.blpop(self.lists, timeout=block_s)
            if popped:
                # The client decodes nothing (no decode_responses): a message is bytes, not str.
                self.arrivals.append((time.time(), cast(bytes, popped[1])))
                return 1
        return 0


# Processes ----------------------------------------------------------------------------------------


@dataclass
class Beat:
    """One `celery beat` process that the harness started."""

    popen: subprocess.Popen[bytes]
    log: Path
    process: psutil.Process

    def alive(self) -> bool:
        return self.popen.poll() is None

    def cpu_seconds(self) -> float:
        try:
            times = self.process.cpu_times()
        except psutil.NoSuchProcess:
            return 0.0
        return times.user + times.system

    def rss_mb(self) -> float:
        try:
            return self.process.memory_info().rss / 2**20
        except psutil.NoSuchProcess:
            return 0.0

    def peak_rss_mb(self) -> float:
        """The high-water mark of its resident memory over its whole life (Linux: VmHWM)."""
        try:
            for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return self.rss_mb()

    def log_tail(self, chars: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def errors(self) -> list[str]:
        lines = self.log.read_text(errors="replace").splitlines()
        return [line for line in lines if "ERROR" in line or "Traceback" in line]


def beat_command(scheduler: str, *, pidfile: Path, profile_to: Path | None = None) -> list[str]:
    profile = ["-m", "cProfile", "-o", str(profile_to)] if profile_to else []
    return [
        *(sys.executable, *profile, "-m", "celery", "-A", "workers", "beat"),
        *("--loglevel", "WARNING", "--scheduler", scheduler, "--pidfile", str(pidfile)),
        *("--schedule", str(pidfile.with_suffix(".schedule"))),
    ]


def beat_start(command: list[str], *, env: dict[str, str], log: Path) -> Beat:
    """Start a beat in its own session, so only the harness decides when it stops."""
    with log.open("wb") as output:
        popen = subprocess.Popen(
            command,
            cwd=REPO,
            env=os.environ | env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _started.append(popen)
    return Beat(popen=popen, log=log, process=psutil.Process(popen.pid))


def process_stop(popen: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_S) -> None:
    if popen.poll() is None:
        popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()


def processes_stop_all() -> None:
    """Stop every process this harness started that still runs."""
    for popen in _started:
        process_stop(popen)


def server_cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by each PostgreSQL and Redis server process (the whole servers,
    so including anyone else's sessions), by pid."""
    used: dict[str, float] = {}
    for process in psutil.process_iter(["name"]):
        name = process.info["name"] or ""
        if name.startswith(("postgres", "redis-server")):
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            kind = "redis" if name.startswith("redis") else "postgres"
            used[f"{kind}:{process.pid}"] = times.user + times.system
    return used


def machine_cpu_seconds() -> float:
    """CPU seconds every process on the machine used so far, all cores together."""
    times = psutil.cpu_times()
    fields = ("user", "nice", "system", "irq", "softirq", "steal")
    return sum(getattr(times, name, 0.0) for name in fields)


def own_cpu_seconds() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


def server_cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    totals = {"postgres": 0.0, "redis": 0.0}
    for key, seconds in after.items():
        totals[key.split(":")[0]] += seconds - before.get(key, 0.0)
    return totals
