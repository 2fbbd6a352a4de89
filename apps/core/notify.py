"""Waking a process when another one commits a change, through PostgreSQL's LISTEN/NOTIFY, and the
one such wake-up dts has: the scheduler's.

`NOTIFY` is delivered when (and only if) the notifying transaction commits, to every connection
LISTENing on the channel. Elsewhere (SQLite in `make dev`, where every process is a thread of one
process) a listener waits on an in-process event instead, or simply for its timeout.
"""

import logging
import select
import threading

import psycopg2
import psycopg2.extensions
from django.db import connection, transaction

logger = logging.getLogger(__name__)


class Listener:
    """Waits for a notification on `channel`, or `fallback` outside PostgreSQL, or a timeout."""

    def __init__(self, channel: str, fallback: threading.Event | None = None) -> None:
        self.channel = channel
        self.fallback = fallback or threading.Event()
        self._connection: psycopg2.extensions.connection | None = None

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds; True when a change was notified."""
        return self.received(timeout) is not None

    def received(self, timeout: float) -> list[str] | None:
        """Block up to `timeout` seconds; the payloads of the notifications that came ("" for
        one without, and for a wake-up outside PostgreSQL), or None when none came."""
        if timeout <= 0:
            return None
        if connection.vendor != "postgresql":
            woke = self.fallback.wait(timeout)
            self.fallback.clear()
            return [""] if woke else None
        try:
            listening = self._listen()
            readable, _, _ = select.select([listening], [], [], timeout)
            if not readable:
                return None
            listening.poll()
            payloads = [notice.payload for notice in listening.notifies]
            listening.notifies.clear()
            return payloads
        except (psycopg2.Error, OSError) as problem:
            # An outage, which the process's own outage tracking says: no traceback here.
            logger.warning("Notifications on %s unavailable (%s); polling", self.channel, problem)
            self.close()
            threading.Event().wait(timeout)
            return None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _listen(self) -> psycopg2.extensions.connection:
        if self._connection is None or self._connection.closed:
            listening = psycopg2.connect(**connection.get_connection_params())
            listening.set_session(autocommit=True)
            with listening.cursor() as cursor:
                cursor.execute(f"LISTEN {self.channel}")
            self._connection = listening
        return self._connection


# The scheduler's wake-up: a change to its work (a schedule edited, a retry or deferral due)
# applies at once, without reloading anything. Every scheduler replica listens; in `make dev` an
# in-process event is set after commit.
SCHEDULER_CHANNEL = "dts_scheduler_wake"
_scheduler_in_process = threading.Event()


def _wake(channel: str, in_process: threading.Event, payload: str = "") -> None:
    """Notify `channel` (with `payload`) when the current transaction commits (at once, outside
    one), and set the in-process event that stands for it outside PostgreSQL."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [channel, payload])
    transaction.on_commit(in_process.set)


def scheduler_wake() -> None:
    """Wake every scheduler when the current transaction commits (at once, outside one)."""
    _wake(SCHEDULER_CHANNEL, _scheduler_in_process)


def scheduler_wake_listener() -> Listener:
    """What a scheduler waits on between ticks: a wake-up or its timeout."""
    return Listener(SCHEDULER_CHANNEL, fallback=_scheduler_in_process)


# The workflows' wake-up: a run of a workflow's step ended, so its workflow run may move on
# (apps.workflows.services.workflow_runs_advance, which every scheduler replica runs from a thread
# of its own: workers.scheduler.WorkflowAdvancer). In `make dev` an in-process event is set.
WORKFLOWS_CHANNEL = "dts_workflows_wake"
_workflows_in_process = threading.Event()


def workflows_wake(workflow_run_id: object = "") -> None:
    """Wake every workflow advancer when the current transaction commits (at once, outside one),
    saying which workflow run's step ended, when one did."""
    _wake(WORKFLOWS_CHANNEL, _workflows_in_process, str(workflow_run_id))


def workflows_wake_listener() -> Listener:
    return Listener(WORKFLOWS_CHANNEL, fallback=_workflows_in_process)
