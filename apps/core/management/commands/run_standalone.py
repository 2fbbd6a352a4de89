"""`make dev`: web, a worker and the scheduler in one process, on SQLite and an in-memory broker.

For trying dts on one machine; production runs each process on its own (see the README).
"""

import logging
import os
import socket
import sys
import threading
from typing import Any

import uvicorn
from celery import beat, signals
from celery.worker import WorkController
from celery.worker import state as worker_state
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.demo import demo_load
from apps.runs.execution import run_attempt_lost
from apps.runs.services import EXECUTE_RUN_TASK
from config.asgi import application
from workers.celery import app
from workers.messages import run_and_attempt
from workers.queues import queue_names
from workers.scheduler import DatabaseScheduler


class Command(BaseCommand):
    help = "Run web, a worker and the scheduler in this one process (the `make dev` platform)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--concurrency", type=int, default=2)
        parser.add_argument(
            "--shutdown-wait",
            type=float,
            default=10.0,
            help="Seconds to wait, when stopping, for the runs still executing (default 10).",
        )
        parser.add_argument("--demo-username", default="admin")
        parser.add_argument("--demo-password", default="admin")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1.")
        if not options["shutdown_wait"] >= 0:
            raise CommandError("--shutdown-wait must be 0 or more seconds.")
        if not settings.CELERY_BROKER_URL.startswith("memory://"):
            raise CommandError(
                "run_standalone embeds its worker with the in-memory broker; "
                "use config.settings.local (CELERY_BROKER_URL=memory://)."
            )
        call_command("migrate", interactive=False, verbosity=0)
        demo_load(username=options["demo_username"], password=options["demo_password"])

        worker = self._start_worker(concurrency=options["concurrency"])
        scheduler = beat.EmbeddedService(app, thread=True, scheduler_cls=DatabaseScheduler)
        scheduler.start()  # type: ignore[union-attr]  # thread=True gives the _Threaded kind
        url = f"http://{options['host']}:{options['port']}"
        self.stdout.write(
            self.style.SUCCESS(
                f"dts is starting at {url}/ (live runs; the admin at {url}/admin/) — log in as "
                f"{options['demo_username']} / {options['demo_password']}"
            )
        )
        try:
            uvicorn.run(
                application,
                host=options["host"],
                port=options["port"],
                lifespan="off",
                log_level="info",
                # dts reads X-Forwarded-For itself, as far as DTS_TRUSTED_PROXIES allows.
                proxy_headers=False,
            )
        finally:
            scheduler.stop()
            self._stop_worker(worker, wait_seconds=options["shutdown_wait"])

    def _start_worker(self, *, concurrency: int) -> WorkController:
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

    def _stop_worker(self, worker: WorkController, *, wait_seconds: float) -> None:
        """Stop the worker, waiting up to `wait_seconds` for the runs it executes. A thread cannot
        be stopped, and Python would wait for the pool's threads at exit (for hours, for a long
        task): the attempts still executing then are recorded lost (retried per their jobs'
        policies at the next start), and the process ends without them."""
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
            )
        self.stderr.write(
            f"Stopped without waiting longer for {len(executing)} executing runs, recorded lost: "
            + ", ".join(run_id for run_id, _ in executing)
        )
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
