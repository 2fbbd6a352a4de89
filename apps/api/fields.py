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
