"""What a long-running process says while a backing service it needs is away.

A process that loses PostgreSQL, Redis or Kafka keeps running and retries (docs/runs.md, "When a
backing service is down"). Retrying every second must not write a traceback every second: an
`Outage` logs its start once (with the error), a reminder at most every `remind_every` seconds,
and its end (with how long it lasted), and keeps the gauge `dts_dependency_up` of its process
(0 during the outage) for /metrics.

A process has one `Outage` per backing service (`outage_for`), shared by all its parts (in
`make dev`: the web views, the scheduler and the worker's heartbeat), so that the gauge and the
log say what the process sees, not what its last writer saw. Only errors that say the service
cannot be reached are outages (`database_unreachable`); any other error is a bug or a conflict,
which its caller logs with its traceback.
"""

import logging
import re
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import psycopg2
from django.db import InterfaceError, OperationalError, connections
from prometheus_client import Gauge

DEPENDENCY_UP = Gauge(
    "dts_dependency_up",
    "1 while this process reaches the backing service, 0 during an outage",
    ["dependency", "address"],
    # In a prefork worker (multiprocess mode) a pool process forked after it was set holds a 0
    # written at no time: the latest value set, by a live process, is what the process sees.
    multiprocess_mode="livemostrecent",
)

REMIND_EVERY_SECONDS = 60.0
_NUMBERS = re.compile(r"\d+")
_logger = logging.getLogger(__name__)
# PostgreSQL's error codes that mean the server cannot be reached or used at all: connection
# exceptions (class 08), the server shutting down or starting up, no connection slot left. A
# connection that fails before PostgreSQL answers has no code.
_UNREACHABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")


class Outage:
    """The state of one backing service as one process sees it: up, or down since when."""

    def __init__(
        self,
        *,
        dependency: str,
        logger: logging.Logger = _logger,
        address: str = "",
        remind_every: float = REMIND_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dependency = dependency
        self.address = address
        self.name = f"{dependency} at {address}" if address else dependency
        self.logger = logger
        self.remind_every = remind_every
        self.clock = clock
        self.down_since: float | None = None
        self.failures = 0
        self._next_reminder = 0.0
        self._lock = threading.Lock()  # a web process checks from many threads
        self._up = DEPENDENCY_UP.labels(dependency=dependency, address=address)
        self._up.set(1)

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, error: BaseException | str) -> None:
        """Record a failed attempt: logged when the outage starts, then once per reminder."""
        with self._lock:
            now = self.clock()
            self.failures += 1
            if self.down_since is None:
                self.down_since = now
                self._next_reminder = now + self.remind_every
                self._up.set(0)
                self.logger.error(
                    "%s unreachable: %s; retrying until it returns",
                    self.name,
                    _describe(error),
                )
            elif now >= self._next_reminder:
                self._next_reminder = now + self.remind_every
                self.logger.error(
                    "%s still unreachable after %.0f s (%d failed attempts): %s",
                    self.name,
                    now - self.down_since,
                    self.failures,
                    _describe(error),
                )

    def succeeded(self) -> None:
        """Record a successful attempt: the end of an outage, if one was going on, is logged."""
        if self.down_since is None:
            return
        with self._lock:
            if self.down_since is None:
                return
            self.logger.warning(
                "%s reachable again after %.0f s (%d failed attempts)",
                self.name,
                self.clock() - self.down_since,
                self.failures,
            )
            self.down_since = None
            self.failures = 0
            self._up.set(1)


_registry: dict[tuple[str, str], Outage] = {}
_registry_lock = threading.Lock()


def outage_for(dependency: str, address: str) -> Outage:
    """This process's one `Outage` of `dependency` at `address`, made at the first call."""
    with _registry_lock:
        outage = _registry.get((dependency, address))
        if outage is None:
            outage = _registry[(dependency, address)] = Outage(
                dependency=dependency, address=address
            )
        return outage


def database_outage(alias: str = "default") -> Outage:
    """The outage of the database behind the connection `alias`: "PostgreSQL at host:port"."""
    settings = connections[alias].settings_dict
    if connections[alias].vendor == "sqlite":
        return outage_for("SQLite", str(settings["NAME"]))
    host = settings.get("HOST") or "localhost"
    return outage_for("PostgreSQL", _host_port(host, settings.get("PORT") or 5432))


def redis_outage(url: str) -> Outage:
    """The outage of the Redis server at `url` ("Redis at host:port", without credentials or
    database number: the databases of one server are up or down together)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return outage_for("Redis", parts.path)
    return outage_for("Redis", _host_port(parts.hostname or "localhost", parts.port or 6379))


def _host_port(host: str, port: int | str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def database_unreachable(error: BaseException) -> bool:
    """Whether a database error means the database cannot be reached (an outage, waited out),
    rather than that a statement failed (a bug, a conflict, a timeout: logged with its traceback).
    SQLite, a file, is never away: its errors are of the second kind."""
    if not isinstance(error, InterfaceError | OperationalError):
        return False
    cause = error.__cause__
    if not isinstance(cause, psycopg2.Error):
        return False
    return isinstance(error, InterfaceError) or (
        cause.pgcode is None or cause.pgcode.startswith(_UNREACHABLE_SQLSTATES)
    )


def _describe(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


class RepeatedLinesFilter(logging.Filter):
    """Lets the first of a run of similar records through (similar: the same logger and the same
    message once its numbers are taken out), then at most one per `window` seconds, which says
    how many were dropped in between. For libraries that log each retry (librdkafka logs every
    failed connect, ~20 a second while Kafka is down)."""

    def __init__(
        self, window: float = REMIND_EVERY_SECONDS, clock: Callable[[], float] = time.monotonic
    ):
        super().__init__()
        self.window = window
        self.clock = clock
        self._seen: dict[
            tuple[str, str], tuple[float, int]
        ] = {}  # shape: (let through at, dropped)
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        shape = (record.name, _without_numbers(record.getMessage()))
        now = self.clock()
        with self._lock:
            if len(self._seen) > 1000:  # shapes of long ago: forget them
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.window}
            passed_at, dropped = self._seen.get(shape, (None, 0))
            if passed_at is not None and now - passed_at < self.window:
                self._seen[shape] = (passed_at, dropped + 1)
                return False
            self._seen[shape] = (now, 0)
        if dropped:
            record.msg = f"{record.getMessage()} ({dropped} similar lines dropped before this one)"
            record.args = None
        return True


def _without_numbers(text: str) -> str:
    return _NUMBERS.sub("#", text)
