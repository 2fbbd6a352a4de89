"""Checking an event against the JSON Schema of its type (apps/events/schemas/<type>.json)."""

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from apps.events.models import EventType

SCHEMAS = Path(__file__).resolve().parent / "schemas"


@cache
def event_validator(event_type: str) -> Draft202012Validator:
    if event_type not in EventType.values:
        raise ValueError(f"{event_type!r} is not a dts event type.")
    schema = json.loads((SCHEMAS / f"{event_type}.json").read_text())
    return Draft202012Validator(schema, format_checker=FormatChecker())


def event_problems(event: dict[str, Any]) -> list[str]:
    """What is wrong with the event (a CloudEvents envelope as published), by its type's schema."""
    validator = event_validator(str(event.get("type")))
    return [f"{error.json_path}: {error.message}" for error in validator.iter_errors(event)]
