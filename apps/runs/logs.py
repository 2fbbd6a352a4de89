"""Capturing what a run's task logs and prints, in order, into its run log (RunLogLine).

Lines are buffered and written in batches (every FLUSH_LINES lines or FLUSH_SECONDS), so a long
run's log can be followed while it runs. Each batch writes a `dts.run.logged` event with it, which
the log indexer follows (docs/logs.md); the live streams hear of the lines themselves. A run keeps
at most DTS_RUN_LOG_MAX_LINES lines of at most DTS_RUN_LOG_MAX_LINE_CHARS characters; past that one
line says how many were dropped.
"""

import contextlib
import io
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, QuerySet
from django.utils import timezone

from apps.events.models import EventType, OutboxEvent
from apps.events.outbox import event_new, events_record
from apps.events.subscribers import log_lines_announce
from apps.runs.models import RunId, RunLogLine

FLUSH_LINES = 100
FLUSH_SECONDS = 1.0
STDOUT_LOGGER = "stdout"
STDERR_LOGGER = "stderr"


class RunLogCapture(logging.Handler):
    """A handler for the records of one thread (the one running the task), kept as log lines."""

    def __init__(self, *, run_id: RunId, job_id: int, attempt: int) -> None:
        super().__init__(level=logging.DEBUG)
        self.run_id = run_id
        self.job_id = job_id
        self.attempt = attempt
        self.thread_id = threading.get_ident()
        self.pending: list[RunLogLine] = []
        # Only the run's attempts write its log, one at a time: a first attempt starts it empty.
        previous = (
            RunLogLine.objects.filter(run_id=run_id).aggregate(
                last=Max("sequence"), kept=Count("id")
            )
            if attempt > 1
            else {"last": 0, "kept": 0}
        )
        self.sequence = previous["last"] or 0
        self.kept = previous["kept"]
        self.dropped = 0
        self.last_flush = time.monotonic()
        self.writing = False

    def emit(self, record: logging.LogRecord) -> None:
        # Not ours: records of other threads (another task of a thread pool), and of our writes.
        if record.thread != self.thread_id or self.writing:
            return
        for text in (
            self.format(record) if record.exc_info else record.getMessage()
        ).splitlines() or [""]:
            self.add(
                level=record.levelname, logger=record.name, message=text, created=record.created
            )

    def add(self, *, level: str, logger: str, message: str, created: float) -> None:
        # The last line allowed is kept for saying how many were dropped.
        if self.kept >= settings.DTS_RUN_LOG_MAX_LINES - 1:
            self.dropped += 1
            return
        limit = settings.DTS_RUN_LOG_MAX_LINE_CHARS
        if len(message) > limit:
            message = message[:limit] + " …(truncated)"
        self._append(level=level, logger=logger, message=message, created=created)
        if len(self.pending) >= FLUSH_LINES or time.monotonic() - self.last_flush >= FLUSH_SECONDS:
            self.flush()

    def _append(self, *, level: str, logger: str, message: str, created: float) -> None:
        self.kept += 1
        self.sequence += 1
        self.pending.append(
            RunLogLine(
                run_id=self.run_id,
                attempt=self.attempt,
                sequence=self.sequence,
                logged_at=datetime.fromtimestamp(created, tz=UTC),
                level=level[:10],
                logger=logger[:200],
                message=message,
            )
        )

    def flush(self) -> None:
        if not self.pending:
            return
        self.writing = True
        try:
            with transaction.atomic():
                RunLogLine.objects.bulk_create(self.pending)
                events_record([self._logged_event()], announce=False)
        finally:
            self.writing = False
        log_lines_announce(run_id=self.run_id, lines=[log_line_data(line) for line in self.pending])
        self.pending = []
        self.last_flush = time.monotonic()

    def _logged_event(self) -> OutboxEvent:
        return event_new(
            type=EventType.RUN_LOGGED,
            subject=f"runs/{self.run_id}",
            job_id=self.job_id,
            time=timezone.now(),
            data={
                "run_id": str(self.run_id),
                "attempt": self.attempt,
                "first_sequence": self.pending[0].sequence,
                "last_sequence": self.pending[-1].sequence,
            },
        )

    def close(self) -> None:
        if self.dropped:
            self._append(
                level="WARNING",
                logger="dts",
                message=f"{self.dropped} more log lines dropped: the run log keeps "
                f"{settings.DTS_RUN_LOG_MAX_LINES} lines.",
                created=time.time(),
            )
        self.flush()
        super().close()


def log_line_data(line: RunLogLine) -> dict[str, Any]:
    """A log line as the API and the live streams write it."""
    return {
        "sequence": line.sequence,
        "attempt": line.attempt,
        "logged_at": line.logged_at.isoformat().replace("+00:00", "Z"),
        "level": line.level,
        "logger": line.logger,
        "message": line.message,
    }


class _LineWriter(io.TextIOBase):
    """A text stream that turns what is written to it into log lines of the capture."""

    def __init__(self, capture: RunLogCapture, name: str, level: str) -> None:
        self.capture, self.name, self.level = capture, name, level
        self.partial = ""

    def write(self, text: str) -> int:
        *lines, self.partial = (self.partial + text).split("\n")
        for line in lines:
            self.capture.add(level=self.level, logger=self.name, message=line, created=time.time())
        return len(text)

    def close(self) -> None:
        if self.partial:
            self.write("\n")
        super().close()


@contextlib.contextmanager
def run_log_capture(*, run_id: RunId, job_id: int, attempt: int) -> Iterator[RunLogCapture]:
    """Capture the current thread's log records, and what is printed, into the run's log."""
    capture = RunLogCapture(run_id=run_id, job_id=job_id, attempt=attempt)
    root = logging.getLogger()
    root.addHandler(capture)
    stdout = _LineWriter(capture, STDOUT_LOGGER, "INFO")
    stderr = _LineWriter(capture, STDERR_LOGGER, "WARNING")
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            yield capture
    finally:
        stdout.close()
        stderr.close()
        root.removeHandler(capture)
        capture.close()


def run_log_lines(
    *, run_id: RunId, after_sequence: int = 0, limit: int = 1000
) -> QuerySet[RunLogLine]:
    """A page of the run's log, in order, after a sequence number (for paging and following)."""
    return RunLogLine.objects.filter(run_id=run_id, sequence__gt=after_sequence).order_by(
        "sequence"
    )[:limit]
