"""apps.core.outages: an outage is logged once, reminded at most once a minute, and its end is
logged; a process has one per service; only errors that say a service cannot be reached are
outages; repeated library lines are collapsed."""

import copy
import logging

import pytest
from django.db import DatabaseError, InterfaceError, connection, connections, transaction
from prometheus_client import REGISTRY

from apps.core.outages import (
    Outage,
    RepeatedLinesFilter,
    database_outage,
    database_unreachable,
    outage_for,
    redis_outage,
)
from tests.backing_services.control import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def up(dependency: str, address: str = "") -> float | None:
    labels = {"dependency": dependency, "address": address}
    return REGISTRY.get_sample_value("dts_dependency_up", labels)


def test_an_outage_is_logged_once_then_reminded_each_minute_then_its_end(caplog):
    clock = Clock()
    outage = Outage(
        dependency="Thing", logger=logging.getLogger("test.outage"), address="h:1", clock=clock
    )
    assert up("Thing", "h:1") == 1

    with caplog.at_level(logging.INFO, logger="test.outage"):
        for _ in range(260):  # 4 a second for 65 s
            outage.failed(ConnectionRefusedError("refused\nmore detail"))
            clock.now += 0.25
        assert outage.down
        assert up("Thing", "h:1") == 0
        outage.succeeded()
        outage.succeeded()

    assert [record.getMessage() for record in caplog.records] == [
        "Thing at h:1 unreachable: ConnectionRefusedError: refused; retrying until it returns",
        "Thing at h:1 still unreachable after 60 s (241 failed attempts): "
        "ConnectionRefusedError: refused",
        "Thing at h:1 reachable again after 65 s (260 failed attempts)",
    ]
    assert not outage.down
    assert up("Thing", "h:1") == 1


def test_successes_without_an_outage_log_nothing(caplog):
    outage = Outage(dependency="Quiet", logger=logging.getLogger("test.quiet"))
    with caplog.at_level(logging.DEBUG, logger="test.quiet"):
        for _ in range(10):
            outage.succeeded()
    assert caplog.records == []


def record(message: str, *args: object, name: str = "lib") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, message, args, None)


def test_similar_lines_pass_once_a_window_and_say_how_many_were_dropped():
    clock = Clock()
    repeated = RepeatedLinesFilter(window=60, clock=clock)
    passed = []
    for n in range(200):  # 20 a second for ten seconds, then one more after the window
        line = record("Connect to 127.0.0.1:%d failed (after %dms)", 59092, n % 3)
        if repeated.filter(line):
            passed.append(line.getMessage())
        clock.now += 0.05
    clock.now += 60
    last = record("Connect to 127.0.0.1:%d failed (after %dms)", 59092, 12)
    assert repeated.filter(last)
    passed.append(last.getMessage())

    assert passed == [
        "Connect to 127.0.0.1:59092 failed (after 0ms)",
        "Connect to 127.0.0.1:59092 failed (after 12ms)"
        " (199 similar lines dropped before this one)",
    ]


def test_different_lines_and_loggers_are_not_collapsed():
    repeated = RepeatedLinesFilter(window=60, clock=Clock())
    assert repeated.filter(record("broker down"))
    assert repeated.filter(record("topic created"))
    assert repeated.filter(record("broker down", name="other"))
    assert not repeated.filter(record("broker down"))


def test_the_parts_of_a_process_share_one_outage_per_service(caplog):
    """In `make dev` the scheduler, the heartbeat and /readyz live in one process: one says the
    service is down, the others see it down, and the gauge is not whatever the last one wrote."""
    scheduler_view = outage_for("Shared", "127.0.0.1:1")
    heartbeat_view = outage_for("Shared", "127.0.0.1:1")
    assert heartbeat_view is scheduler_view
    assert outage_for("Shared", "127.0.0.1:2") is not scheduler_view

    with caplog.at_level(logging.INFO, logger="apps.core.outages"):
        scheduler_view.failed(ConnectionRefusedError("refused"))
        heartbeat_view.failed(ConnectionRefusedError("refused"))
        assert heartbeat_view.down
        assert up("Shared", "127.0.0.1:1") == 0
        assert up("Shared", "127.0.0.1:2") == 1
        heartbeat_view.succeeded()

    assert not scheduler_view.down
    assert up("Shared", "127.0.0.1:1") == 1
    assert [record.getMessage() for record in caplog.records] == [
        "Shared at 127.0.0.1:1 unreachable: ConnectionRefusedError: refused; "
        "retrying until it returns",
        "Shared at 127.0.0.1:1 reachable again after 0 s (2 failed attempts)",
    ]


def test_outages_are_named_by_service_and_address_without_credentials(settings):
    assert redis_outage("redis://:secret@cache.internal:6380/3").name == (
        "Redis at cache.internal:6380"
    )
    assert redis_outage("rediss://user:secret@[::1]/0").name == "Redis at [::1]:6379"
    # The databases of one Redis server are up or down together: one outage.
    assert redis_outage("redis://cache.internal:6380/4") is redis_outage(
        "redis://cache.internal:6380/3"
    )
    database = settings.DATABASES["default"]
    assert database_outage().name == f"PostgreSQL at {database['HOST']}:{database['PORT']}"


def database_error(sql: str, using: str = "default") -> DatabaseError:
    with pytest.raises(DatabaseError) as raised, transaction.atomic(using=using):
        connections[using].cursor().execute(sql)
    return raised.value


@pytest.mark.django_db
def test_only_errors_saying_the_database_cannot_be_reached_are_outages():
    bugs = [
        database_error("SELECT * FROM no_such_table"),  # ProgrammingError
        database_error("SELECT 'x'::integer"),  # DataError
        database_error("SELECT 1/0"),  # DataError
        database_error("SET LOCAL statement_timeout = 1; SELECT pg_sleep(1)"),  # QueryCanceled
    ]
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE once (id integer PRIMARY KEY)")
        cursor.execute("INSERT INTO once VALUES (1)")
    bugs.append(database_error("INSERT INTO once VALUES (1)"))  # IntegrityError
    assert [database_unreachable(error) for error in bugs] == [False] * 5
    assert type(bugs[-1]).__name__ == "IntegrityError"
    assert type(bugs[-2]).__name__ == "OperationalError"  # OperationalError, not an outage


@pytest.mark.django_db(transaction=True)
def test_a_refused_connection_and_a_terminated_session_are_outages(settings):
    closed = copy.deepcopy(connections["default"].settings_dict) | {"PORT": str(free_port())}
    refused = connections["default"].__class__(closed, alias="refused")
    with pytest.raises(DatabaseError) as raised:
        refused.ensure_connection()
    assert database_unreachable(raised.value)

    doomed = connections["default"].__class__(
        copy.deepcopy(connections["default"].settings_dict), alias="doomed"
    )
    try:
        with doomed.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (pid,) = cursor.fetchone()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        with pytest.raises(DatabaseError) as raised, doomed.cursor() as cursor:
            cursor.execute("SELECT 1")
        assert database_unreachable(raised.value), raised.value  # 57P01, admin shutdown
        with pytest.raises(InterfaceError) as raised, doomed.cursor() as cursor:
            cursor.execute("SELECT 1")
        assert database_unreachable(raised.value)
    finally:
        doomed.close()
