"""A process's sign of life for its container's health check (compose/healthcheck.py, the chart's
probes): the worker's heartbeat thread, the scheduler's ticks and the relay's rounds touch the
file DTS_HEARTBEAT_FILE names (none by default; the image sets one). They touch it whatever a
round's outcome: an outage of PostgreSQL, Redis or Kafka is waited out by the process, and
restarting it would not help. A loop that hangs stops touching it, and the check fails. (A
worker's heartbeat thread starts once the worker has reached the broker, and beats beside the
consumer rather than in it.)"""

import logging
import time
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

# A hot loop (the relay between batches) touches the file at most this often.
TOUCH_EVERY_SECONDS = 1.0


class Liveness:
    def __init__(self, path: str | None = None) -> None:
        chosen = settings.DTS_HEARTBEAT_FILE if path is None else path
        self.path = Path(chosen) if chosen else None
        self.touched_at = float("-inf")
        self.warned = False

    def beat(self) -> None:
        if self.path is None or time.monotonic() - self.touched_at < TOUCH_EVERY_SECONDS:
            return
        self.touched_at = time.monotonic()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()
        except OSError as problem:
            # A read-only or missing folder: the health check will say so; log it once.
            if not self.warned:
                logger.warning("Cannot touch the heartbeat file %s: %s", self.path, problem)
                self.warned = True
