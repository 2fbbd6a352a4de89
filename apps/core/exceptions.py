"""Errors a user can cause. Every one names the field at fault and the reason, so the admin, the
API and the CLI can show it next to the input instead of failing with a server error."""

from typing import Any


class ApplicationError(Exception):
    def __init__(
        self, message: str, *, field: str | None = None, extra: dict[str, Any] | None = None
    ):
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra or {}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ValidationFailed(ApplicationError):
    """The input is malformed or breaks a rule; nothing was written."""


class NotFound(ApplicationError):
    """The object named by the input does not exist."""


class InvalidTransition(ApplicationError):
    """The object is not in a state from which the requested change is allowed."""
