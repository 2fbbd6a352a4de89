"""Waking the scheduler when its work changes (a schedule edited, a retry scheduled), so changes
apply at once without reloading anything.

On PostgreSQL a change runs `NOTIFY`, which the database delivers when (and only if) the
transaction commits, to every scheduler replica LISTENing. Elsewhere (SQLite in `make dev`, where
the scheduler is a thread of the same process) an in-process event does the same after commit.
"""

import logging
import select
import threading

import psycopg2
import psycopg2.extensions
from django.db import connection, transaction

logger = logging.getLogger(__name__)

CHANNEL = "dts_scheduler_wake"
_in_process = threading.Event()


def scheduler_wake() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {CHANNEL}")
    transaction.on_commit(_in_process.set)


class ScheduleWakeup:
    """What a scheduler waits on between ticks: a change notification or its timeout."""

    def __init__(self) -> None:
        self._listener: psycopg2.extensions.connection | None = None

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds; True when a change was notified."""
        if timeout <= 0:
            return False
        if connection.vendor != "postgresql":
            woke = _in_process.wait(timeout)
            _in_process.clear()
            return woke
        try:
            listener = self._listen()
            readable, _, _ = select.select([listener], [], [], timeout)
            if not readable:
                return False
            listener.poll()
            listener.notifies.clear()
            return True
        except (psycopg2.Error, OSError):
            logger.warning("Schedule change notifications unavailable; polling", exc_info=True)
            self.close()
            threading.Event().wait(timeout)
            return False

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _listen(self) -> psycopg2.extensions.connection:
        if self._listener is None or self._listener.closed:
            listener = psycopg2.connect(**connection.get_connection_params())
            listener.set_session(autocommit=True)
            with listener.cursor() as cursor:
                cursor.execute(f"LISTEN {CHANNEL}")
            self._listener = listener
        return self._listener
