"""The Prometheus metrics of a process without web pages (the relay, a worker, the scheduler): on a
port of its own (the web serves /metrics itself). Among them `dts_dependency_up`
(apps.core.outages), which says while a backing service is away.

A process in prometheus_client's multiprocess mode (a prefork worker: workers.multiprocess) serves
the sum of the files its processes count into, those of dead processes included, so that no count
is lost when a pool process is replaced; the gauges of dead processes are left out of the sums
of the gauges that count only live ones (`dts_runs_active`). Any other process serves the default
registry.

The port answers in Prometheus's text format, with what `texts` hold appended: series measured
apart and rendered ahead of the scrape (the scheduler's job health, apps.jobs.metrics), which
would take longer to render than a scrape should wait."""

import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)


def metrics_serve(
    *, port: int, address: str, setting: str, texts: Sequence[Callable[[], bytes]] = ()
) -> bool:
    """Serve this process's metrics on http://`address`:`port`/metrics from a thread; port 0 serves
    none. A port that cannot be had (another worker on the host holds it) is logged once, naming
    `setting`, and the process goes on without: its metrics are never a reason to stop it.
    Returns whether the metrics are served."""
    if not port:
        return False
    try:
        server = MetricsServer((address, port), registry=metrics_registry(), texts=texts)
    except OSError as problem:  # the port in use, or an address this host does not have
        logger.warning(
            "Metrics not served: cannot listen on %s:%d (%s); set %s to a free port, or 0",
            address,
            port,
            problem.strerror or problem,
            setting,
        )
        return False
    threading.Thread(target=server.serve_forever, name="dts-metrics", daemon=True).start()
    logger.info("Metrics served on http://%s:%d/metrics", address, port)
    return True


class MetricsServer(ThreadingHTTPServer):
    """Answers GET /metrics (and /) with the registry's series and the `texts`, each scrape in a
    thread of its own."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        registry: CollectorRegistry,
        texts: Sequence[Callable[[], bytes]],
    ) -> None:
        super().__init__(address, _MetricsHandler)
        self.registry = registry
        self.texts = texts


class _MetricsHandler(BaseHTTPRequestHandler):
    server: MetricsServer

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] not in {"/", "/metrics"}:
            self.send_error(404)
            return
        body = generate_latest(self.server.registry) + b"".join(
            text() for text in self.server.texts
        )
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """A scrape is not worth a log line."""


def metrics_registry() -> CollectorRegistry:
    """What this process serves: its processes' files in multiprocess mode, else the default
    registry."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        return REGISTRY
    registry = CollectorRegistry()
    registry.register(ProcessFilesCollector(folder))
    logger.info("Metrics of this process and its pool processes summed from %s", folder)
    return registry


class ProcessFilesCollector(Collector):
    """The multiprocess files of `folder`, summed; before each collection, the processes that
    died since (a pool process killed or replaced) are marked dead, so that the gauges of live
    processes only leave them out."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.files = MultiProcessCollector(None, path=folder)
        self.lock = threading.Lock()  # scrapes are served from threads of their own

    def collect(self) -> Iterable[Metric]:
        with self.lock:
            dead_processes_mark(self.folder)
        return self.files.collect()


def dead_processes_mark(folder: str) -> list[int]:
    """Mark dead (prometheus_client's `mark_process_dead`) each process that has files of live
    gauges in `folder` and no longer exists; return their ids."""
    dead = []
    pids = {_file_pid(path) for path in Path(folder).glob("gauge_live*_*.db")}
    for pid in sorted(pid for pid in pids if pid is not None):
        if not _process_exists(pid):
            mark_process_dead(pid, folder)
            dead.append(pid)
    return dead


def _file_pid(path: Path) -> int | None:
    """The process id of a multiprocess file (`<kind>_<pid>.db`)."""
    number = path.stem.rsplit("_", 1)[-1]
    return int(number) if number.isdigit() else None


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: it exists
        return True
    return True
