"""Writing how attempts end from a background thread of each pool process (a prefork pool's
processes, or a solo pool's worker: those Celery sends `worker_process_init`).

A pool process hands the write to its thread and returns its task's result at once: the worker's
main process acks the message and fetches the next while the write goes on, so a short run's
second round trip to PostgreSQL overlaps Celery's own. The process waits for that write before it
starts its next task and before it exits (a prefork process on `worker_process_shutdown`, as it
ends with `os._exit`; a solo worker when Python exits, which joins the thread), so at most one
ending per process is ever unwritten. A process killed in that window leaves its run `running`
and listed by no heartbeat: the reaper declares it lost, as when a process dies just before
writing (docs/runs.md).

Anywhere else (a prefork worker's main process, a thread pool, `make dev`, tests) the write is
made in line."""

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from celery.signals import worker_process_init, worker_process_shutdown

from apps.live.broadcast import live_sender_drain

logger = logging.getLogger(__name__)


class BackgroundWriter:
    """One thread writing one thing at a time; `submit` first waits for the previous write."""

    def __init__(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dts-endings")
        self.pending: Future[Any] | None = None

    def submit(self, function: Callable[..., Any], /, **kwargs: Any) -> None:
        self.wait()
        self.pending = self.executor.submit(function, **kwargs)

    def wait(self) -> None:
        pending, self.pending = self.pending, None
        if pending is None:
            return
        try:
            pending.result()
        except Exception:
            # As a failing signal handler is: logged. The run stays running, and the reaper ends it.
            logger.exception("Could not record how an attempt ended")


_writer: BackgroundWriter | None = None


@worker_process_init.connect
def _writer_start(**kwargs: Any) -> None:
    global _writer
    _writer = BackgroundWriter()


@worker_process_shutdown.connect
def _writer_drain(**kwargs: Any) -> None:
    background_wait()
    live_sender_drain()  # the live messages of what was just written


def in_background(function: Callable[..., Any], /, **kwargs: Any) -> None:
    """Call `function(**kwargs)` from this pool process's background thread, or now elsewhere."""
    if _writer is None:
        function(**kwargs)
    else:
        _writer.submit(function, **kwargs)


def background_wait() -> None:
    """Wait until what this process handed to its background thread is written."""
    if _writer is not None:
        _writer.wait()
