"""The messages dts sends through Celery, and how each names its run: the only module that knows
their names and argument layout.

- An execute-run message starts one attempt of one run: task `dts.execute_run`, task id = run id,
  arguments `[run_id, attempt]` and keyword `limited` (whether its start must check limits).
- A cancel command (a remote-control broadcast) asks the worker executing a run to stop it.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from dispatch.celery import app

EXECUTE_RUN_TASK = "dts.execute_run"
CANCEL_RUN_COMMAND = "dts_cancel_run"
SEND_CHUNK = 500
MAX_PRIORITY = 9


@dataclass(frozen=True)
class ExecuteRun:
    """One execute-run message: the attempt to start and how the broker and worker treat it."""

    run_id: str
    attempt: int
    limited: bool
    queue: str
    priority: int  # dts's: 9 is the highest
    soft_time_limit: int
    time_limit: int


def execute_run_send(messages: Iterable[ExecuteRun]) -> None:
    """Send the messages over one producer, in chunks, each sent as one Redis pipeline (kombu's
    publish batch). A failed send is not retried here: it raises."""
    messages = list(messages)
    for start in range(0, len(messages), SEND_CHUNK):
        with app.producer_or_acquire() as producer, producer.batch(max_size=SEND_CHUNK):
            for message in messages[start : start + SEND_CHUNK]:
                app.send_task(
                    EXECUTE_RUN_TASK,
                    args=[message.run_id, message.attempt],
                    kwargs={"limited": message.limited},
                    task_id=message.run_id,
                    queue=message.queue,
                    # Redis (kombu) serves priority 0 first; dts's 9 is the highest.
                    priority=MAX_PRIORITY - message.priority,
                    soft_time_limit=message.soft_time_limit,
                    time_limit=message.time_limit,
                    producer=producer,
                    retry=False,
                )


def run_and_attempt(args: Any) -> tuple[str, int]:
    """The run id and attempt number an execute-run message carries (a message without an attempt
    number is for its run's first attempt)."""
    run_id, *rest = args
    return str(run_id), int(rest[0]) if rest else 1


def run_cancel_send(run_ids: Iterable[str]) -> None:
    """Tell every worker to stop these runs; the one executing each does (workers.control)."""
    for run_id in run_ids:
        app.control.broadcast(
            CANCEL_RUN_COMMAND,
            arguments={"run_id": run_id, "grace_seconds": settings.DTS_CANCEL_GRACE_SECONDS},
        )
