import hashlib
import itertools
import re
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.db import InterfaceError, OperationalError, close_old_connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential

Function = TypeVar("Function", bound=Callable[..., Any])

# How long a write waits out a database restart before giving up (and leaving it to the reaper).
OUTAGE_SECONDS = 30


def _reconnect(_: Any) -> None:
    close_old_connections()


def survives_database_restart(function: Function) -> Function:
    """Retry `function` (an atomic write, safe to repeat) while the database is unreachable, with
    backoff, for up to OUTAGE_SECONDS."""
    wrapped = retry(
        retry=retry_if_exception_type((OperationalError, InterfaceError)),
        wait=wait_exponential(multiplier=0.2, max=5),
        stop=stop_after_delay(OUTAGE_SECONDS),
        before_sleep=_reconnect,
        reraise=True,
    )(function)
    return wrapped  # type: ignore[return-value]


def execute_prepared(cursor: CursorWrapper, sql: str, params: Sequence[Any]) -> None:
    """Run `sql` (with %s placeholders) as a PostgreSQL prepared statement: parsed and planned once
    per database session instead of on every call. For the statements a worker runs for every
    run; it needs a session per connection (a direct connection, or a pooler in session mode).

    The name comes from the statement's text, so a name always means the same statement."""
    name = "dts_" + hashlib.blake2b(sql.encode(), digest_size=8).hexdigest()
    prepared = _session_prepared(cursor.db)
    if name not in prepared:
        numbers = itertools.count(1)
        cursor.execute(f"PREPARE {name} AS {_PLACEHOLDER.sub(lambda _: f'${next(numbers)}', sql)}")
        prepared.add(name)
    cursor.execute(f"EXECUTE {name} ({', '.join('%s' for _ in params)})", params)


_PLACEHOLDER = re.compile(r"%s")


def _session_prepared(database: BaseDatabaseWrapper) -> set[str]:
    """The statements prepared in the database session of `database`, kept by driver connection:
    a new session (after a reconnection) has none, and a pooled connection keeps its own."""
    session = getattr(database.connection, "driver_connection", database.connection)
    return _PREPARED.setdefault(session, set())


_PREPARED: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
