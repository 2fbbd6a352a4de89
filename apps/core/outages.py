"""What a long-running process says while a backing service it needs is away.

A process that loses PostgreSQL, Redis or Kafka keeps running and retries (docs/runs.md, "When a
backing service is down"). Retrying every second must not write a traceback every second: an
`Outage` logs its start once (with the error), a reminder at most every `remind_every` seconds,
and its end (with how long it lasted), and keeps the gauge `dts_dependency_up` of its process
(0 during the outage) for /metrics.
"""

import logging
import re
import threading
import time
from collections.abc import Callable

from prometheus_client import Gauge

DEPENDENCY_UP = Gauge(
    "dts_dependency_up",
    "1 while this process reaches the backing service, 0 during an outage",
    ["dependency"],
)

REMIND_EVERY_SECONDS = 60.0
_NUMBERS = re.compile(r"\d+")


class Outage:
    """The state of one backing service as one process sees it: up, or down since when."""

    def __init__(
        self,
        *,
        dependency: str,
        logger: logging.Logger,
        address: str = "",
        remind_every: float = REMIND_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dependency = dependency
        self.name = f"{dependency} at {address}" if address else dependency
        self.logger = logger
        self.remind_every = remind_every
        self.clock = clock
        self.down_since: float | None = None
        self.failures = 0
        self._next_reminder = 0.0
        self._lock = threading.Lock()  # a web process checks from many threads
        DEPENDENCY_UP.labels(dependency=dependency).set(1)

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
                DEPENDENCY_UP.labels(dependency=self.dependency).set(0)
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
            DEPENDENCY_UP.labels(dependency=self.dependency).set(1)


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
