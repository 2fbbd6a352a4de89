"""The run state machine. A run is born QUEUED (or FAILED, when a scheduled fire is refused: its
job's arguments no longer validate), and every later change of its state is a guarded update whose
allowed sources are read from TRANSITIONS (`sources_of`), so a late or duplicated signal can never
move a run backwards or out of a terminal state. The table holds exactly the moves the code makes:
tests/apps/runs/test_transitions.py drives every path and checks both ways."""

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

TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    # Started by a worker, or cancelled before it started. A queued run no broker holds is
    # published again (it stays queued); only a run a worker executed can be lost.
    RunState.QUEUED: frozenset({RunState.RUNNING, RunState.CANCELLED}),
    RunState.RUNNING: frozenset(
        {
            RunState.SUCCEEDED,
            RunState.FAILED,
            RunState.TIMED_OUT,
            RunState.LOST,
            RunState.RETRYING,
            RunState.CANCELLING,
            # Celery revoked its task without dts asking (task_revoked): recorded as it happened.
            RunState.CANCELLED,
        }
    ),
    # Published again once its backoff is over, or cancelled while it waits.
    RunState.RETRYING: frozenset({RunState.QUEUED, RunState.CANCELLED}),
    # A run asked to stop ends cancelled however its attempt ends (a failure, a time-out, a lost
    # process: the cancel's own doing), unless the task finished on its own first.
    RunState.CANCELLING: frozenset({RunState.CANCELLED, RunState.SUCCEEDED}),
    **{state: frozenset() for state in TERMINAL_STATES},
}


def sources_of(target: RunState) -> frozenset[RunState]:
    """The states from which a run may move to `target`."""
    return frozenset(source for source, targets in TRANSITIONS.items() if target in targets)


# A worker holds the run: it is executing, or being stopped. An attempt ends only from these.
EXECUTING_STATES = sources_of(RunState.SUCCEEDED)
