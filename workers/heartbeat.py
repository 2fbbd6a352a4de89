"""A worker node's heartbeat: a thread in its main process that records, every few seconds, that
the node lives and which runs its pool is executing (apps.runs.services.maintenance). The reaper
in the scheduler reads them to find runs whose worker vanished. While PostgreSQL is away the
heartbeat keeps trying, and says so once, with a reminder each minute and its end
(apps.core.outages); any other error is logged with its traceback at each beat.

The main process also serves its metrics (DTS_WORKER_METRICS_PORT), among them the heartbeat's
`dts_dependency_up`."""

import logging
import os
import threading
from collections.abc import Iterable
from typing import Any

from celery.signals import celeryd_init, worker_ready, worker_shutdown
from celery.worker import state
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from apps.core.liveness import Liveness
from apps.core.metrics import metrics_serve
from apps.core.outages import database_outage, database_unreachable
from apps.runs.services.maintenance import worker_heartbeat, worker_stopped
from dispatch.messages import EXECUTE_RUN_TASK

logger = logging.getLogger(__name__)

_stop = threading.Event()


def run_ids(requests: Iterable[Any]) -> list[str]:
    # The set changes under us as tasks start and end: copy it, retrying if it changed mid-copy.
    while True:
        try:
            copied = list(requests)
        except RuntimeError:
            continue
        return [request.id for request in copied if request.name == EXECUTE_RUN_TASK]


@celeryd_init.connect
def start_metrics(**kwargs: Any) -> None:
    # Sent by `celery worker` only, in its main process before it starts its pool or reaches the
    # broker: served while the broker is away too, and by no pool process. make dev's process,
    # a WorkController in a thread, does not send it: the web's /metrics is its own.
    metrics_serve(
        port=settings.DTS_WORKER_METRICS_PORT,
        address=settings.DTS_WORKER_METRICS_ADDRESS,
        setting="DTS_WORKER_METRICS_PORT",
    )


@worker_ready.connect
def start_heartbeat(sender: Any = None, **kwargs: Any) -> None:
    controller = sender.controller
    queues = sorted(queue.name for queue in sender.task_consumer.queues)
    started_at = timezone.now()
    database = database_outage()
    liveness = Liveness()

    def beat() -> None:
        try:
            while True:
                liveness.beat()
                try:
                    worker_heartbeat(
                        hostname=controller.hostname,
                        pid=os.getpid(),
                        queues=queues,
                        concurrency=controller.concurrency,
                        started_at=started_at,
                        active_run_ids=run_ids(state.active_requests),
                        reserved_run_ids=run_ids(state.reserved_requests),
                    )
                    database.succeeded()
                except Exception as problem:
                    # The database may be restarting: say so and beat again; never stop the
                    # worker. Anything else is a bug: its traceback, each beat.
                    if database_unreachable(problem):
                        database.failed(problem)
                    else:
                        logger.exception("Worker heartbeat failed")
                    close_old_connections()
                if _stop.wait(settings.DTS_WORKER_HEARTBEAT_SECONDS):
                    return
        finally:
            connection.close()  # this thread's own

    _stop.clear()
    threading.Thread(target=beat, name="dts-heartbeat", daemon=True).start()


@worker_shutdown.connect
def stop_heartbeat(sender: Any = None, **kwargs: Any) -> None:
    _stop.set()
    try:
        worker_stopped(hostname=sender.hostname)
    except Exception:
        logger.warning("Could not record the worker's stop", exc_info=True)
