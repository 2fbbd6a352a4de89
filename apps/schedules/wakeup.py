"""Waking the scheduler when its work changes (a schedule edited, a retry scheduled), so changes
apply at once without reloading anything: a `NOTIFY` on PostgreSQL, which every scheduler replica
LISTENs for (apps.core.notify); an in-process event in `make dev`, after commit."""

import threading

from django.db import connection, transaction

from apps.core.notify import Listener

CHANNEL = "dts_scheduler_wake"
_in_process = threading.Event()


def scheduler_wake() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {CHANNEL}")
    transaction.on_commit(_in_process.set)


def schedule_wakeup() -> Listener:
    """What a scheduler waits on between ticks: a change notification or its timeout."""
    return Listener(CHANNEL, fallback=_in_process)
