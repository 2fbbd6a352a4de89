from collections.abc import Callable
from typing import Any, TypeVar

from django.db import InterfaceError, OperationalError, close_old_connections
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential

Function = TypeVar("Function", bound=Callable[..., Any])

# How long a write waits out a database restart before giving up (and leaving it to the reaper).
OUTAGE_SECONDS = 30


def _reconnect(_: Any) -> None:
    close_old_connections()


def survives_database_restart(function: Function) -> Function:
    """Retry `function` (an atomic write, safe to repeat) while the database is unreachable, with
    backoff, for up to OUTAGE_SECONDS."""
    wrapped = retry(
        retry=retry_if_exception_type((OperationalError, InterfaceError)),
        wait=wait_exponential(multiplier=0.2, max=5),
        stop=stop_after_delay(OUTAGE_SECONDS),
        before_sleep=_reconnect,
        reraise=True,
    )(function)
    return wrapped  # type: ignore[return-value]
