"""The request body parser: JSON only, refused (400) when PostgreSQL could not store it or when it
is nested deeper than any dts object needs."""

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32


class StrictJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as error:
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels.") from error
        problem = _problem(data, depth=0)
        if problem:
            raise ParseError(problem)
        return data


def _problem(value: Any, *, depth: int) -> str | None:
    """Why `value` cannot be accepted: too deep, or a string PostgreSQL cannot store (a NUL
    character, or half of a UTF-16 surrogate pair, which is no character at all)."""
    if depth > MAX_DEPTH:
        return f"JSON nested deeper than {MAX_DEPTH} levels."
    if isinstance(value, str):
        return _string_problem(value)
    if isinstance(value, dict):
        items: list[Any] = [*value.keys(), *value.values()]
    elif isinstance(value, list):
        items = value
    else:
        return None
    for item in items:
        problem = _problem(item, depth=depth + 1)
        if problem:
            return problem
    return None


def _string_problem(text: str) -> str | None:
    if "\x00" in text:
        return "Strings may not contain NUL characters."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "Strings may not contain lone surrogates."
    return None
