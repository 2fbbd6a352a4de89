"""The run state machine. Every change of a run's state is a guarded update allowed by this table,
so a late or duplicated signal can never move a run backwards or out of a terminal state."""

from django.db import models


class RunState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    RETRYING = "retrying", "Retrying"
    CANCELLING = "cancelling", "Cancelling"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    TIMED_OUT = "timed_out", "Timed out"
    CANCELLED = "cancelled", "Cancelled"
    LOST = "lost", "Lost"


TERMINAL_STATES = frozenset(
    {RunState.SUCCEEDED, RunState.FAILED, RunState.TIMED_OUT, RunState.CANCELLED, RunState.LOST}
)

# A worker holds the run: it is executing, or being stopped.
EXECUTING_STATES = frozenset({RunState.RUNNING, RunState.CANCELLING})

TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    # A run is created QUEUED, in the transaction that records it, and published after commit.
    RunState.QUEUED: frozenset({RunState.RUNNING, RunState.CANCELLED, RunState.LOST}),
    RunState.RUNNING: frozenset(
        {
            RunState.SUCCEEDED,
            RunState.FAILED,
            RunState.TIMED_OUT,
            RunState.RETRYING,
            RunState.CANCELLING,
            RunState.LOST,
        }
    ),
    RunState.RETRYING: frozenset({RunState.QUEUED, RunState.CANCELLED, RunState.LOST}),
    # A run asked to stop may still finish on its own first; its real outcome is then recorded.
    RunState.CANCELLING: frozenset(
        {
            RunState.CANCELLED,
            RunState.SUCCEEDED,
            RunState.FAILED,
            RunState.TIMED_OUT,
            RunState.LOST,
        }
    ),
    **{state: frozenset() for state in TERMINAL_STATES},
}


def sources_of(target: RunState) -> frozenset[RunState]:
    """The states from which a run may move to `target`."""
    return frozenset(source for source, targets in TRANSITIONS.items() if target in targets)
