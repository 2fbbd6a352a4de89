"""Built-in task types, for demos, tests and smoke checks of a deployment."""

from typing import Any

from apps.tasktypes.context import cancellable_sleep
from apps.tasktypes.registry import task_type

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
