"""dts's Celery beat scheduler: `celery -A workers beat -S workers.scheduler:DatabaseScheduler`.

It keeps no schedule of its own in memory or on disk: every tick asks PostgreSQL for the due
schedules (an indexed query), fires them through apps.schedules.firing (a workflow's through
apps.workflows.firing), publishes due retries, and then sleeps until the next due time or until a
change is notified, whichever comes first. So any number of replicas can run, restarts lose
nothing, and edits apply without a reload.

Every few seconds it also keeps runs from getting stuck: it declares lost the runs no worker
reports executing, and publishes again the queued runs no broker or worker holds (a publisher died
before sending, or Redis lost its data). Every hour it removes finished runs past their
retention with the workflow runs, old skipped-fire records and webhook deliveries, published
events past theirs, and expired log indices. Beside its ticks, threads of its own move workflow
runs on and tell webhooks what they asked for (apps.notifications).

It starts and keeps running while PostgreSQL or the broker is down: each tick that fails is tried
again a second later, and the outage is logged once, with a reminder each minute and its end
(apps.core.outages). Any other error (a bug) is logged with its traceback, and the tick is tried
again a second later too. Runs fired while the broker is down are queued in PostgreSQL and
published by the sweep when it returns. Its metrics (DTS_SCHEDULER_METRICS_PORT) show the outages
too (`dts_dependency_up`), its ticks, fires and skips (apps.schedules.metrics), and, measured
every few seconds by a thread of their own, the due backlog and the broker's queues: how many
messages wait in each and how long its oldest queued run has waited (apps.runs.metrics).
"""

import logging
import threading
import time
from datetime import timedelta
from typing import Any

import redis
from celery import beat
from celery.signals import beat_init
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from apps.core.liveness import Liveness
from apps.core.metrics import metrics_serve
from apps.core.notify import scheduler_wake_listener, workflows_wake_listener
from apps.core.outages import database_outage, database_unreachable, redis_outage
from apps.events.outbox import events_purge_published
from apps.jobs.metrics import JOB_HEALTH_EVERY_SECONDS, JobHealthExposition
from apps.logs.maintenance import log_indices_purge_expired
from apps.notifications.notices import notices_collect
from apps.notifications.services import deliveries_purge, deliveries_send
from apps.runs.metrics import broker_queues_record
from apps.runs.selectors import runs_oldest_queued_at
from apps.runs.services.maintenance import (
    runs_purge_expired,
    runs_reap_lost,
    runs_republish_missing,
)
from apps.runs.services.moves import runs_next_retry_at, runs_retry_due
from apps.schedules.firing import schedules_due_count, schedules_fire_due, schedules_next_due_at
from apps.schedules.metrics import due_schedules_record, tick_record
from apps.schedules.services import skipped_fires_purge
from apps.workflows.firing import (
    workflow_schedules_due_count,
    workflow_schedules_fire_due,
    workflow_schedules_next_due_at,
)
from apps.workflows.metrics import workflow_runs_running_record
from apps.workflows.services import (
    workflow_run_advance,
    workflow_runs_advance,
    workflow_runs_purge_expired,
    workflow_runs_running_count,
    workflow_steps_running,
)
from dispatch.broker import broker_queue_depths
from dispatch.queues import queue_names

logger = logging.getLogger(__name__)

SWEEP_EVERY_SECONDS = 10.0
RETENTION_EVERY_SECONDS = 3600.0
RETRY_AFTER_ERROR_SECONDS = 1.0
# The backlog and the broker's queues are measured this often (each is a query or two).
GAUGES_EVERY_SECONDS = 5.0
# Workflow runs are moved on when a step's run ends, and this often besides. The ends of a burst
# gather for ADVANCE_LINGER_SECONDS, but a workflow run whose running steps have all ended is moved
# at once; one the advancer has not counted is looked for at most every SETTLED_EVERY_SECONDS.
ADVANCE_EVERY_SECONDS = 5.0
ADVANCE_LINGER_SECONDS = 0.25
SETTLED_EVERY_SECONDS = 0.005
ADVANCE_BATCH = 100
# The notifier looks for what to tell webhooks, and sends what is due, this often.
NOTIFY_EVERY_SECONDS = 1.0
NOTIFY_BATCH = 20
BROKER_ERRORS = (BrokerError, redis.ConnectionError, redis.TimeoutError)


class DatabaseScheduler(beat.Scheduler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.wakeup = scheduler_wake_listener()
        self.next_sweep = 0.0
        self.next_broker_check = 0.0
        self.next_retention = 0.0
        self.database = database_outage()
        self.liveness = Liveness()
        broker_url = settings.CELERY_BROKER_URL
        # make dev's in-memory broker cannot be away: no outage of it to show.
        self.broker = redis_outage(broker_url) if broker_url.startswith("redis") else None
        super().__init__(*args, **kwargs)
        self.max_interval = min(self.max_interval, settings.DTS_SCHEDULER_MAX_SLEEP_SECONDS)

    def setup_schedule(self) -> None:
        """Schedules live in the database; Celery's own beat_schedule is not used. Workflow runs
        are moved on beside the ticks, and webhooks told, from threads of their own."""
        WorkflowAdvancer().start()
        Notifier().start()

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """Fire what is due, then wait for the next due time or a change; beat loops at once."""
        self.liveness.beat()
        try:
            self.fire_due()
            delay = self.seconds_until_due()
        except Exception as problem:
            # An outage, or a bug, must not end the scheduler: say so, reconnect, go on.
            if database_unreachable(problem):
                self.database.failed(problem)
            elif self.broker and isinstance(problem, BROKER_ERRORS):
                self.broker.failed(problem)
            else:
                logger.exception("Scheduler tick failed; retrying")
            close_old_connections()
            self.wakeup.close()
            # Not on the wakeup listener: it would need the database that may be away.
            time.sleep(RETRY_AFTER_ERROR_SECONDS)
            return 0
        if delay > 0:
            self.wakeup.wait(delay)
        return 0

    def fire_due(self) -> None:
        started = time.monotonic()
        batch_size = settings.DTS_SCHEDULER_BATCH_SIZE
        while schedules_fire_due(now=timezone.now(), batch_size=batch_size).claimed == batch_size:
            pass
        while workflow_schedules_fire_due(now=timezone.now(), batch_size=batch_size) == batch_size:
            pass
        self.database.succeeded()
        while runs_retry_due(now=timezone.now(), limit=batch_size) == batch_size:
            pass
        tick_record(seconds=time.monotonic() - started, at=time.time())
        if time.monotonic() >= self.next_sweep:
            self.sweep()
            self.next_sweep = time.monotonic() + SWEEP_EVERY_SECONDS

    def sweep(self) -> None:
        now = timezone.now()
        runs_reap_lost(now=now, timeout=timedelta(seconds=settings.DTS_WORKER_HEARTBEAT_TIMEOUT))
        if time.monotonic() >= self.next_broker_check:
            older_than = timedelta(seconds=settings.DTS_QUEUED_CHECK_AFTER_SECONDS)
            runs_republish_missing(
                now=now,
                older_than=older_than,
                timeout=timedelta(seconds=settings.DTS_WORKER_HEARTBEAT_TIMEOUT),
            )
            if self.broker:
                self.broker.succeeded()
            self.next_broker_check = time.monotonic() + settings.DTS_BROKER_CHECK_EVERY_SECONDS
        if time.monotonic() >= self.next_retention:
            if settings.DTS_RUN_RETENTION_DAYS:
                keep = timedelta(days=settings.DTS_RUN_RETENTION_DAYS)
                runs_purge_expired(now=now, keep=keep)
                skipped_fires_purge(now=now, keep=keep)
                deliveries_purge(now=now, keep=keep)
                workflow_runs_purge_expired(now=now, keep=keep)
            events_purge_published(now=now)
            log_indices_purge_expired(now=now)
            self.next_retention = time.monotonic() + RETENTION_EVERY_SECONDS

    def seconds_until_due(self) -> float:
        longest = float(self.max_interval or settings.DTS_SCHEDULER_MAX_SLEEP_SECONDS)
        upcoming = [
            due
            for due in (
                schedules_next_due_at(),
                workflow_schedules_next_due_at(),
                runs_next_retry_at(),
            )
            if due is not None
        ]
        if not upcoming:
            return longest
        return min(longest, max(0.0, (min(upcoming) - timezone.now()).total_seconds()))

    def close(self) -> None:
        self.wakeup.close()
        super().close()

    @property
    def info(self) -> str:
        return "    . db -> dts schedules (PostgreSQL, woken by NOTIFY)"


@beat_init.connect
def start_metrics(sender: beat.Service, **kwargs: Any) -> None:
    """A scheduler process serves its metrics once its DatabaseScheduler is set up, before its
    first tick (so during an outage at start too). make dev's process runs the scheduler in a
    thread beside the web, whose /metrics is its own: none there."""
    job_health = JobHealthExposition()
    if (
        isinstance(sender.scheduler, DatabaseScheduler)
        and threading.current_thread() is threading.main_thread()
        and metrics_serve(
            port=settings.DTS_SCHEDULER_METRICS_PORT,
            address=settings.DTS_SCHEDULER_METRICS_ADDRESS,
            setting="DTS_SCHEDULER_METRICS_PORT",
            texts=[job_health.text],
        )
        and settings.DTS_METRICS_ENABLED
    ):
        BacklogGauges(job_health=job_health).start()


class WorkflowAdvancer:
    """Moves workflow runs on (apps.workflows.services.workflow_runs_advance) from a thread of its
    own: when a run of a step ends (a NOTIFY: apps.core.notify.workflows_wake), and every
    ADVANCE_EVERY_SECONDS besides, for a wake-up lost with its process or sent while PostgreSQL
    was away. Every scheduler replica runs one; a workflow run's lock takes them in turn."""

    def __init__(self) -> None:
        self.listener = workflows_wake_listener()
        self.stop = threading.Event()
        # Of each workflow run it moved, how many steps waited for a run then, less the ends
        # woken since: at 0, the workflow run is moved at once.
        self.running: dict[str, int] = {}

    def start(self) -> None:
        threading.Thread(target=self.run, name="dts-workflow-advancer", daemon=True).start()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                if not self.advance():
                    # Not on the listener: it would need the database that may be away.
                    self.listener.close()
                    self.stop.wait(ADVANCE_EVERY_SECONDS)
                elif (ended := self.listener.received(ADVANCE_EVERY_SECONDS)) is not None:
                    self.linger(ended)
        finally:
            self.listener.close()
            connection.close()  # this thread's own

    def linger(self, ended: list[str]) -> None:
        """Let a burst of ends gather (the branches of a wide fan-out): the next move of each
        workflow run notes all of them, not one each. A workflow run whose running steps have
        all ended may have a step ready (a fan-in's join, a chain's next): it is moved at once.
        Each wake-up names the workflow run whose step ended (`ended`), counted against the
        steps it had running; one it does not know of, or does not name (make dev), is looked
        for in the database, at most every SETTLED_EVERY_SECONDS."""
        until = time.monotonic() + ADVANCE_LINGER_SECONDS
        looked, owed = 0.0, False
        while True:
            owed = self.settle(ended) or owed
            now = time.monotonic()
            if owed and now - looked >= SETTLED_EVERY_SECONDS:
                looked, owed = now, False
                if not self.advance(settled=True):
                    return
            if now >= until:
                return
            deadline = min(until, looked + SETTLED_EVERY_SECONDS) if owed else until
            ended = self.listener.received(deadline - time.monotonic()) or []

    def settle(self, ended: list[str]) -> bool:
        """Count `ended` down, and move each workflow run that reaches 0; False when each was
        known, True when one was not (or a move failed)."""
        unknown = False
        for workflow_run_id in ended:
            if workflow_run_id not in self.running:
                unknown = True
                continue
            self.running[workflow_run_id] -= 1
            if self.running[workflow_run_id] <= 0:
                del self.running[workflow_run_id]
                try:
                    workflow_run_advance(workflow_run_id=workflow_run_id)
                except Exception as problem:
                    if not database_unreachable(problem):
                        logger.exception("Workflow run %s not moved on", workflow_run_id)
                    close_old_connections()
                    return True
        return unknown

    def advance(self, *, settled: bool = False) -> bool:
        """Move on what is due (`settled`: only the workflow runs whose running steps have all
        ended), then count the steps each workflow run has running; False when that failed
        (PostgreSQL away, or a bug: logged)."""
        try:
            while workflow_runs_advance(limit=ADVANCE_BATCH, settled=settled) == ADVANCE_BATCH:
                pass
            self.running = workflow_steps_running()
        except Exception as problem:
            if not database_unreachable(problem):
                logger.exception("Workflow runs not moved on")
            close_old_connections()
            return False
        return True


class Notifier:
    """Tells webhooks what they asked for, from a thread of its own: every NOTIFY_EVERY_SECONDS
    it writes the deliveries of what ended or turned late since its last look
    (apps.notifications.notices; one replica at a time) and makes the due attempts
    (apps.notifications.services.deliveries_send; replicas share them). A slow receiver holds up
    this thread only."""

    def __init__(self) -> None:
        self.stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self.run, name="dts-notifier", daemon=True).start()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.notify()
                self.stop.wait(NOTIFY_EVERY_SECONDS)
        finally:
            connection.close()  # this thread's own

    def notify(self) -> None:
        try:
            notices_collect(now=timezone.now())
            while deliveries_send(limit=NOTIFY_BATCH) == NOTIFY_BATCH:
                pass
        except Exception as problem:
            if not database_unreachable(problem):
                logger.exception("Webhooks not told")
            close_old_connections()


class BacklogGauges:
    """Measures, every GAUGES_EVERY_SECONDS from a thread of its own, what is waiting: the due
    schedules, and each queue's messages in the broker and oldest queued run. Apart from the
    ticks, which may wait long on their own work or on an outage: a stuck scheduler still shows
    its backlog growing. While PostgreSQL or Redis is away the gauges keep their last values (the
    ticks say so, in the log and dts_dependency_up). Every JOB_HEALTH_EVERY_SECONDS it also
    measures every job's health (apps.jobs.metrics)."""

    def __init__(
        self, every: float = GAUGES_EVERY_SECONDS, *, job_health: JobHealthExposition | None = None
    ) -> None:
        self.every = every
        self.job_health = job_health
        self.job_health_due = 0.0  # time.monotonic() of its next measure
        self.stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self.run, name="dts-scheduler-gauges", daemon=True).start()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.measure()
                if self.job_health and time.monotonic() >= self.job_health_due:
                    self.job_health.refresh()
                    self.job_health_due = time.monotonic() + JOB_HEALTH_EVERY_SECONDS
                self.stop.wait(self.every)
        finally:
            connection.close()  # this thread's own

    def measure(self) -> None:
        try:
            now = timezone.now()
            due_schedules_record(
                schedules_due_count(now=now) + workflow_schedules_due_count(now=now)
            )
            workflow_runs_running_record(workflow_runs_running_count())
            queues = queue_names()
            oldest = runs_oldest_queued_at(queues=queues)
            depths = broker_queue_depths(queues)
            now = timezone.now()  # after both reads: a run queued meanwhile is no younger than 0
            broker_queues_record(
                depths=depths,
                oldest_ages={
                    queue: max(0.0, (now - queued_at).total_seconds())
                    for queue, queued_at in oldest.items()
                },
            )
        except Exception as problem:
            if not (database_unreachable(problem) or isinstance(problem, BROKER_ERRORS)):
                logger.exception("Scheduler gauges not measured")
            close_old_connections()
