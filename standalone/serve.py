"""`make dev`'s process (`manage.py run_standalone`, which checks its options and loads the demo
first): uvicorn serves the ASGI app in the main thread, a Celery WorkController with the thread pool
consumes the in-memory broker in a thread, and the scheduler runs in another."""

import logging
import os
import socket
import sys
import threading
from typing import TextIO

import uvicorn
from celery import beat, signals
from celery.worker import WorkController
from celery.worker import state as worker_state

from apps.runs.metrics import LostDetector
from apps.runs.services.moves import run_attempt_lost
from config.asgi import application
from dispatch.celery import app
from dispatch.messages import EXECUTE_RUN_TASK, run_and_attempt
from dispatch.queues import queue_names
from workers.scheduler import DatabaseScheduler


def standalone_serve(*, host: str, port: int, concurrency: int, shutdown_wait: float) -> None:
    """Serve until interrupted, then stop the scheduler and the worker, waiting up to
    `shutdown_wait` seconds for the runs still executing."""
    # The streams as they are before the worker redirects them to Celery's logger.
    streams = (sys.stdout, sys.stderr)
    worker = _worker_start(concurrency=concurrency)
    scheduler = beat.EmbeddedService(app, thread=True, scheduler_cls=DatabaseScheduler)
    scheduler.start()  # type: ignore[union-attr]  # thread=True gives the _Threaded kind
    try:
        uvicorn.run(
            application,
            host=host,
            port=port,
            lifespan="off",
            log_level="info",
            # dts reads X-Forwarded-For itself, as far as DTS_TRUSTED_PROXIES allows.
            proxy_headers=False,
        )
    finally:
        scheduler.stop()
        _worker_stop(worker, wait_seconds=shutdown_wait, streams=streams)


def _worker_start(*, concurrency: int) -> WorkController:
    # A WorkController, unlike `celery worker`, installs no signal handlers, so it can live in a
    # thread; the thread pool is the one that works inside a single process. Nor does it send
    # `worker_ready` as `celery worker` does: sent here, it starts dts's heartbeat
    # (workers.heartbeat), without which the reaper declares every run lost after
    # DTS_WORKER_HEARTBEAT_TIMEOUT.
    worker = app.WorkController(
        hostname=f"standalone@{socket.gethostname()}",
        pool_cls="threads",
        concurrency=concurrency,
        queues=queue_names(),
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        ready_callback=lambda consumer: signals.worker_ready.send(sender=consumer),
    )
    threading.Thread(target=worker.start, name="dts-worker", daemon=True).start()
    return worker


def _worker_stop(
    worker: WorkController, *, wait_seconds: float, streams: tuple[TextIO, TextIO]
) -> None:
    """Stop the worker, waiting up to `wait_seconds` for the runs it executes. A thread cannot be
    stopped, and Python would wait for the pool's threads at exit (for hours, for a long task):
    the attempts still executing then are recorded lost (retried per their jobs' policies at the
    next start), and the process ends without them."""
    stopping = threading.Thread(
        target=worker.stop,
        kwargs={"in_sighandler": False, "exitcode": 0},
        name="dts-worker-stop",
        daemon=True,
    )
    stopping.start()
    stopping.join(wait_seconds)
    if not stopping.is_alive():
        return
    executing = [
        run_and_attempt(request.args)
        for request in list(worker_state.active_requests)
        if request.name == EXECUTE_RUN_TASK
    ]
    for run_id, attempt in executing:
        run_attempt_lost(
            run_id=run_id,
            attempt=attempt,
            reason=f"Worker lost: make dev stopped while this run executed ({wait_seconds:g} s "
            "after being asked to).",
            detected_by=LostDetector.WORKER,
        )
    output, errors = streams
    errors.write(
        f"Stopped without waiting longer for {len(executing)} executing runs, recorded lost: "
        + ", ".join(run_id for run_id, _ in executing)
        + "\n"
    )
    logging.shutdown()
    output.flush()
    errors.flush()
    os._exit(0)
