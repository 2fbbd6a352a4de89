"""Fields of request bodies."""

from typing import Any

from rest_framework import serializers


class TextField(serializers.CharField):
    """A JSON string, and only that: DRF's CharField also takes numbers, which the schema says
    it does not."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class BooleanValue(serializers.BooleanField):
    """A JSON true or false, and only that: DRF's BooleanField also takes 1, "yes" and "on", which
    the schema says it does not (a query parameter, all text, takes those)."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class JSONObjectField(serializers.JSONField):
    """A JSON object, and only that (a task's arguments): JSONField takes any JSON value."""

    default_error_messages = {"not_an_object": "Arguments are a JSON object."}

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            self.fail("not_an_object")
        return value


class QueryText(serializers.CharField):
    """A query parameter's text, as sent. DRF trims white space (control characters such as
    U+001F included) before checking the length, which let a value longer than the schema's
    maxLength through."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
