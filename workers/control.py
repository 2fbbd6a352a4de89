"""Remote-control commands that dts adds to every worker (sent with app.control.broadcast)."""

import logging
import os
import signal
import threading
from typing import Any

from billiard.pool import SIG_SOFT_TIMEOUT
from celery.worker import state as worker_state
from celery.worker.control import control_command

logger = logging.getLogger(__name__)

CANCEL_RUN_COMMAND = "dts_cancel_run"


@control_command(args=[("run_id", str), ("grace_seconds", float)], signature="<run_id> <grace>")
def dts_cancel_run(state: Any, run_id: str, grace_seconds: float) -> dict[str, str]:
    """Stop a run this worker executes: first ask (the task gets SoftTimeLimitExceeded and may clean
    up), then kill its pool process if it is still running after the grace period."""
    for request in list(worker_state.active_requests):
        if request.id == run_id and request.worker_pid:
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
