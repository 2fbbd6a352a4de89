import functools
import hashlib
import itertools
import json
import re
import uuid
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from django.core.serializers.json import DjangoJSONEncoder
from django.db import InterfaceError, OperationalError, close_old_connections, connection, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.utils import timezone
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential

Function = TypeVar("Function", bound=Callable[..., Any])

# How long a write waits out a database restart before giving up (and leaving it to the reaper).
OUTAGE_SECONDS = 30


def _reconnect(_: Any) -> None:
    close_old_connections()


def survives_database_restart(function: Function) -> Function:
    """Retry `function` (an atomic write, safe to repeat) while the database is unreachable, with
    backoff, for up to OUTAGE_SECONDS. The first call is made directly: tenacity's set-up costs
    more than the worker's hot-path statement it would wrap, and is needed only once one failed."""
    retrying = retry(
        retry=retry_if_exception_type((OperationalError, InterfaceError)),
        wait=wait_exponential(multiplier=0.2, max=5),
        stop=stop_after_delay(OUTAGE_SECONDS),
        before_sleep=_reconnect,
        reraise=True,
    )(function)

    @functools.wraps(function)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (OperationalError, InterfaceError):
            _reconnect(None)
            return retrying(*args, **kwargs)

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


def models_insert(objects: Sequence[models.Model], *, ignore_conflicts: bool = False) -> list[Any]:
    """Insert `objects`, all of one model, in one statement, and return the primary keys of the
    rows inserted. With `ignore_conflicts` a row that breaks a unique constraint is left out (and
    its key is not returned); without, an auto primary key is set on its object, as bulk_create
    sets it.

    On PostgreSQL the rows travel as one JSON document that `json_populate_recordset` reads: a
    quarter of the CPU of bulk_create, which prepares each value of each field in Python (for the
    scheduler's thousands of runs and events a second). Elsewhere (SQLite in make dev) it is
    bulk_create. Values are written as they are, without the fields' `pre_save`, except that
    `auto_now` and `auto_now_add` fields are set to the time of the call."""
    if not objects:
        return []
    model = type(objects[0])
    meta = model._meta
    if connection.vendor != "postgresql":
        created = model._default_manager.bulk_create(objects, ignore_conflicts=ignore_conflicts)
        if ignore_conflicts:  # bulk_create cannot tell which it inserted
            keys = [obj.pk for obj in objects]
            return list(model._default_manager.filter(pk__in=keys).values_list("pk", flat=True))
        return [obj.pk for obj in created]
    columns = _insert_columns(model)
    now = timezone.now() if any(stamp for *_, stamp in columns) else None
    rows = []
    for obj in objects:
        row = {}
        for attname, column, write, stamp in columns:
            if stamp:
                setattr(obj, attname, now)
            value = getattr(obj, attname)
            row[column] = value if value is None or write is None else write(value)
        rows.append(row)
    table = connection.ops.quote_name(meta.db_table)
    names = ", ".join(connection.ops.quote_name(column) for _, column, *_ in columns)
    sql = (
        f"INSERT INTO {table} ({names}) SELECT {names} "  # noqa: S608
        f"FROM json_populate_recordset(NULL::{table}, %s) "
        f"{'ON CONFLICT DO NOTHING ' if ignore_conflicts else ''}"
        f"RETURNING {connection.ops.quote_name(meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [json.dumps(rows, cls=DjangoJSONEncoder, separators=(",", ":"))])
        keys = [key for (key,) in cursor.fetchall()]
    if not ignore_conflicts and meta.pk.attname not in {attname for attname, *_ in columns}:
        for obj, key in zip(objects, keys, strict=True):
            setattr(obj, meta.pk.attname, key)
    return keys


def models_update(objects: Sequence[models.Model], fields: Sequence[str]) -> None:
    """Write `fields` of `objects`, all of one model and saved already, in one statement: on
    PostgreSQL an UPDATE from the rows as one JSON document (json_populate_recordset), where
    bulk_update builds a CASE of every row for every field; elsewhere bulk_update. Values are
    written as they are (no `pre_save`)."""
    if not objects:
        return
    model = type(objects[0])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(objects, fields)
        return
    pk = model._meta.pk
    wanted = {cast(models.Field, model._meta.get_field(name)).attname for name in fields}
    wanted.add(pk.attname)
    columns = [column for column in _insert_columns(model) if column[0] in wanted]
    if pk.attname not in {attname for attname, *_ in columns}:  # an automatic primary key
        columns.append((pk.attname, pk.column, None, False))
    rows = [
        {
            column: value if value is None or write is None else write(value)
            for attname, column, write, _ in columns
            for value in [getattr(obj, attname)]
        }
        for obj in objects
    ]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    assignments = ", ".join(
        f"{quote(column)} = v.{quote(column)}" for _, column, *_ in columns if column != pk.column
    )
    sql = (
        f"UPDATE {table} SET {assignments} "  # noqa: S608
        f"FROM json_populate_recordset(NULL::{table}, %s) v "
        f"WHERE {table}.{quote(pk.column)} = v.{quote(pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [json.dumps(rows, cls=DjangoJSONEncoder, separators=(",", ":"))])


# (attname, column, how its value is written in JSON (None: as it is), whether set to now)
_Column = tuple[str, str, Callable[[Any], Any] | None, bool]


@functools.cache
def _insert_columns(model: type[models.Model]) -> list[_Column]:
    """The columns an insert writes: every concrete field but an automatic primary key."""
    columns = []
    for field in model._meta.concrete_fields:
        if isinstance(field, models.AutoField):
            continue
        write: Callable[[Any], Any] | None = None
        if isinstance(field, models.DateTimeField):
            write = datetime.isoformat
        elif isinstance(field, models.UUIDField):
            write = uuid.UUID.__str__
        stamp = bool(getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False))
        columns.append((field.attname, field.column, write, stamp))
    return columns
