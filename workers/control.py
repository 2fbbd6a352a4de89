"""Remote-control commands that dts adds to every worker (sent with app.control.broadcast)."""

import logging
import os
import signal
import threading
from typing import Any

from billiard.pool import SIG_SOFT_TIMEOUT
from celery.worker import state as worker_state
from celery.worker.control import control_command
from django.db import connections

from apps.runs.services.moves import run_attempt_end
from apps.runs.states import RunState
from apps.tasktypes.context import run_cancel_forget, run_cancel_request
from dispatch.messages import CANCEL_RUN_COMMAND, run_and_attempt

logger = logging.getLogger(__name__)


@control_command(
    name=CANCEL_RUN_COMMAND,
    args=[("run_id", str), ("grace_seconds", float)],
    signature="<run_id> <grace>",
)
def cancel_run(state: Any, run_id: str, grace_seconds: float) -> dict[str, str]:
    """Stop a run this worker executes: first ask (the task gets SoftTimeLimitExceeded and may clean
    up), then kill its pool process if it is still running after the grace period.

    A task executing in this very process (a thread pool, as in `make dev`) is asked instead to
    stop at its next cancel check (apps.tasktypes.context): the signal would stop the whole
    process."""
    for request in list(worker_state.active_requests):
        if request.id == run_id and request.worker_pid:
            if request.worker_pid == os.getpid():
                _cancel_in_this_process(request, grace_seconds)
                return {"ok": f"cancelling {run_id}"}
            pid = request.worker_pid
            os.kill(pid, SIG_SOFT_TIMEOUT or signal.SIGTERM)
            timer = threading.Timer(grace_seconds, _kill_if_still_running, args=(request, pid))
            timer.daemon = True
            timer.start()
            logger.info("Cancelling run %s in process %s (%s s grace)", run_id, pid, grace_seconds)
            return {"ok": f"cancelling {run_id}"}
    return {"ok": f"{run_id} is not running here"}


def _kill_if_still_running(request: Any, pid: int) -> None:
    if request in worker_state.active_requests and request.worker_pid == pid:
        logger.warning(
            "Run %s ignored its cancel for the grace period: killing %s", request.id, pid
        )
        os.kill(pid, signal.SIGKILL)


def _cancel_in_this_process(request: Any, grace_seconds: float) -> None:
    run_cancel_request(request.id)
    timer = threading.Timer(grace_seconds, _end_if_still_running, args=(request, grace_seconds))
    timer.daemon = True
    timer.start()
    logger.info(
        "Cancelling run %s: its task stops at its next cancel check (%s s grace)",
        request.id,
        grace_seconds,
    )


def _end_if_still_running(request: Any, grace_seconds: float) -> None:
    """A thread cannot be killed: end the run without its task, which runs on to an ending that
    the run's guards then ignore."""
    if request not in worker_state.active_requests:
        run_cancel_forget(request.id)  # in case the task ended before entering its run context
        return
    run_id, attempt = run_and_attempt(request.args)
    logger.warning(
        "Run %s ignored its cancel for the grace period; its thread cannot be killed: "
        "ending the run without it",
        run_id,
    )
    try:
        run_attempt_end(
            run_id=run_id,
            attempt=attempt,
            outcome=RunState.CANCELLED,
            error=(
                f"Cancelled, but the task did not stop within {grace_seconds:g} s. This worker "
                "runs tasks in threads of one process (as `make dev` does), where a task stops "
                "only at a cancel check (docs/runs.md); this one goes on in the background until "
                "it ends, and its outcome is ignored."
            ),
        )
    finally:
        connections.close_all()
