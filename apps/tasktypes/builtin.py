"""Built-in task types, for demos, tests and smoke checks of a deployment."""

import logging
from typing import Any

from apps.tasktypes.context import cancellable_sleep
from apps.tasktypes.registry import task_type

logger = logging.getLogger("dts.log")

NO_ARGUMENTS = {"type": "object", "properties": {}, "additionalProperties": False}


class TaskFailedOnPurpose(Exception):
    """Raised by dts.fail."""


@task_type("dts.noop", schema=NO_ARGUMENTS, description="Does nothing and succeeds.")
def noop() -> None:
    return None


@task_type(
    "dts.echo",
    schema={"type": "object"},
    description="Returns its arguments as its result.",
)
def echo(**args: Any) -> dict[str, Any]:
    return args


@task_type(
    "dts.sleep",
    schema={
        "type": "object",
        "properties": {"seconds": {"type": "number", "minimum": 0, "maximum": 86400}},
        "required": ["seconds"],
        "additionalProperties": False,
    },
    description="Sleeps for the given number of seconds, then succeeds (or stops when cancelled).",
)
def sleep(seconds: float) -> dict[str, float]:
    cancellable_sleep(seconds)
    return {"slept": seconds}


@task_type(
    "dts.fail",
    schema={
        "type": "object",
        "properties": {"message": {"type": "string", "maxLength": 1000}},
        "additionalProperties": False,
    },
    description="Raises an exception, so the run fails with an error and a traceback.",
)
def fail(message: str = "dts.fail failed on purpose") -> None:
    raise TaskFailedOnPurpose(message)


@task_type(
    "dts.log",
    schema={
        "type": "object",
        "properties": {
            "lines": {"type": "integer", "minimum": 1, "maximum": 10_000},
            "message": {"type": "string", "maxLength": 1000},
        },
        "additionalProperties": False,
    },
    description="Logs `lines` numbered lines of `message` at INFO, then succeeds: for trying log "
    "search and measuring what logs cost.",
)
def log(lines: int = 1, message: str = "dts.log line") -> dict[str, int]:
    for number in range(1, lines + 1):
        logger.info("%s %d", message, number)
    return {"lines": lines}
