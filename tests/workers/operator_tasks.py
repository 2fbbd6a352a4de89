"""Task types as an operator would write them, loaded through DTS_TASK_MODULES in tests; the fault
tests use the ledger ones to count real executions across processes."""

import logging
import os
import signal
import time
from typing import Any

import redis
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import task_postrun
from django.conf import settings

from apps.tasktypes.context import current_run_id
from apps.tasktypes.registry import task_type
from apps.workflows.context import upstream_results
from tests.processes import redis_url

LEDGER_SCHEMA = {
    "type": "object",
    "properties": {"key": {"type": "string"}, "seconds": {"type": "number", "minimum": 0}},
    "required": ["key"],
}


def ledger() -> redis.Redis:
    """A Redis database apart from the broker's, counting executions per key (`ledger_key`)."""
    return redis.Redis.from_url(redis_url(5))


def ledger_key(key: str) -> str:
    """Where the ledger counts `key`: under the broker's database number, so that test runs on
    other brokers of the same Redis (parallel checkouts) neither mix nor clear each other's."""
    return f"{settings.CELERY_BROKER_URL.rsplit('/', 1)[1]}:{key}"


def ledger_clear() -> None:
    """Forget this broker's counts."""
    client = ledger()
    for name in client.scan_iter(match=ledger_key("*"), count=1000):
        client.delete(name)


@task_type(
    "tests.operator.add",
    schema={
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
)
def add(a: int, b: int) -> int:
    return a + b


@task_type("tests.workflow.total", schema={"type": "object"})
def total() -> int:
    """The sum of the `count`s its workflow step's dependencies returned (tests.ledger.record's)."""
    return sum(int(result) for result in upstream_results().values())


@task_type("tests.ledger.record", schema=LEDGER_SCHEMA)
def record(key: str, seconds: float = 0) -> int:
    """Count this execution (under `key`, and under its run in the hash `key:runs`), then take
    `seconds`."""
    pipeline = ledger().pipeline(transaction=True)  # both counts or neither
    pipeline.hincrby(ledger_key(f"{key}:runs"), current_run_id() or "", 1)
    pipeline.incr(ledger_key(key))
    _, count = pipeline.execute()
    time.sleep(seconds)
    return count


@task_type(
    "tests.ledger.flaky",
    schema={
        **LEDGER_SCHEMA,
        "properties": {**LEDGER_SCHEMA["properties"], "failures": {"type": "integer"}},
    },
)
def flaky(key: str, failures: int, seconds: float = 0) -> int:
    """Take `seconds`; fail the first `failures` executions, then succeed."""
    count = ledger().incr(ledger_key(key))
    time.sleep(seconds)
    if count <= failures:
        raise RuntimeError(f"failure {count} of {failures}")
    return count


@task_type("tests.ledger.suicide", schema=LEDGER_SCHEMA)
def suicide(key: str, seconds: float = 0) -> None:
    """A poison pill: kill its own process, every time."""
    ledger().incr(ledger_key(key))
    os.kill(os.getpid(), signal.SIGKILL)


# What `dies_after_success` returns: the hook below kills the process that returned it.
DIE_AFTER_SUCCESS = "die after success"


@task_type("tests.ledger.dies_after_success", schema=LEDGER_SCHEMA)
def dies_after_success(key: str, seconds: float = 0) -> str:
    """Succeed; then its process is killed once Celery's success hooks have run, before it hands
    the result to the worker's main process (which would acknowledge the message)."""
    ledger().incr(ledger_key(key))
    return DIE_AFTER_SUCCESS


@task_postrun.connect
def _die_after_success(retval: Any = None, **kwargs: Any) -> None:
    if retval == DIE_AFTER_SUCCESS:
        os.kill(os.getpid(), signal.SIGKILL)


@task_type("tests.ledger.stubborn", schema=LEDGER_SCHEMA)
def stubborn(key: str, seconds: float = 0) -> None:
    """Ignore being asked to stop: only a kill ends it."""
    ledger().incr(ledger_key(key))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            time.sleep(0.1)
        except SoftTimeLimitExceeded:
            continue


@task_type(
    "tests.operator.chatty",
    schema={"type": "object", "properties": {"lines": {"type": "integer", "minimum": 0}}},
)
def chatty(lines: int = 3) -> int:
    """Log and print, to fill the run log."""
    logger = logging.getLogger("tests.chatty")
    for number in range(lines):
        logger.info("logged line %d", number)
        print(f"printed line {number}")
    logger.warning("multi\nline")
    return lines


@task_type("tests.operator.limited", schema={"type": "object"}, rate_limit_per_minute=2)
def limited() -> None:
    """A task type whose runs start at most twice a minute, over all jobs."""


@task_type(
    "tests.live.chatty",
    schema={
        "type": "object",
        "properties": {"lines": {"type": "integer", "minimum": 1}, "seconds": {"type": "number"}},
        "required": ["lines", "seconds"],
    },
)
def slow_chatty(lines: int, seconds: float) -> int:
    """Log `lines` lines over `seconds`: a run that is seen running, with a log that grows."""
    for number in range(1, lines + 1):
        logging.getLogger("tests.live").info("line %s of %s", number, lines)
        time.sleep(seconds / lines)
    return lines
