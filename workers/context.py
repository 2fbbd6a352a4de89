"""What a task can know about the run it executes."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_current_run_id: ContextVar[str | None] = ContextVar("dts_current_run_id", default=None)


def current_run_id() -> str | None:
    """The id of the run whose task is executing in this context, or None outside a run."""
    return _current_run_id.get()


@contextmanager
def run_context(run_id: str) -> Iterator[None]:
    token = _current_run_id.set(run_id)
    try:
        yield
    finally:
        _current_run_id.reset(token)
