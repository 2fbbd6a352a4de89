"""The allow-list of task types: only callables registered here can be used by jobs.

A task type is a Python callable registered under a stable name with a JSON Schema for its
arguments. Arguments are always a JSON object, passed to the callable as keyword arguments.
"""

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

from apps.core.exceptions import NotFound, ValidationFailed

BUILTIN_TASK_MODULES = ["apps.tasktypes.builtin"]
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
NAME_MAX_LENGTH = 200

TaskFunction = TypeVar("TaskFunction", bound=Callable[..., Any])


@dataclass(frozen=True)
class TaskType:
    name: str
    func: Callable[..., Any]
    schema: dict[str, Any]
    description: str = ""
    rate_limit_per_minute: int | None = None

    @cached_property
    def validator(self) -> Draft202012Validator:
        """Its arguments' validator, built once: a scheduler validates thousands a second."""
        return Draft202012Validator(self.schema)


_task_types: dict[str, TaskType] = {}


def task_type(
    name: str,
    *,
    schema: dict[str, Any],
    description: str = "",
    rate_limit_per_minute: int | None = None,
) -> Callable[[TaskFunction], TaskFunction]:
    """Register the decorated callable as the task type `name` with the argument schema `schema`;
    `rate_limit_per_minute` caps the starts of its runs over all jobs and workers."""
    if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
        raise ImproperlyConfigured(f"Task type {name!r}: the rate limit must be at least 1.")
    if len(name) > NAME_MAX_LENGTH or not NAME_PATTERN.match(name):
        raise ImproperlyConfigured(
            f"Task type name {name!r} must be dotted lowercase words, e.g. 'billing.send_invoices'."
        )
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        raise ImproperlyConfigured(
            f"Task type {name!r} has an invalid schema: {error.message}"
        ) from error
    if schema.get("type") != "object":
        raise ImproperlyConfigured(f"Task type {name!r}: the schema must describe a JSON object.")

    def register(func: TaskFunction) -> TaskFunction:
        existing = _task_types.get(name)
        if existing is not None and existing.func is not func:
            raise ImproperlyConfigured(
                f"Task type {name!r} is already registered by {existing.func}."
            )
        _task_types[name] = TaskType(
            name=name,
            func=func,
            schema=schema,
            description=description or (func.__doc__ or "").strip(),
            rate_limit_per_minute=rate_limit_per_minute,
        )
        return func

    return register


def task_type_get(name: str) -> TaskType:
    try:
        return _task_types[name]
    except KeyError:
        raise NotFound(f"{name!r} is not a registered task type.", field="task_type") from None


def task_type_list() -> list[TaskType]:
    return sorted(_task_types.values(), key=lambda registered: registered.name)


def task_args_validate(*, task_type_name: str, args: Any) -> None:
    """Raise ValidationFailed on the field `args` with the first problem and where it is."""
    errors = list(task_type_get(task_type_name).validator.iter_errors(args))
    if errors:
        first = best_match(errors)
        raise ValidationFailed(
            f"{first.json_path}: {first.message}",
            field="args",
            extra={"errors": [f"{error.json_path}: {error.message}" for error in errors[:20]]},
        )


def task_modules_load() -> None:
    """Import the built-in task modules and those named by the DTS_TASK_MODULES setting."""
    for module in BUILTIN_TASK_MODULES + list(settings.DTS_TASK_MODULES):
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ImproperlyConfigured(
                f"DTS_TASK_MODULES: cannot import task module {module!r}: {error}"
            ) from error
