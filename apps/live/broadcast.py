"""Broadcasting changes to the streams that follow them, once their transaction has committed.

What is broadcast is what the outbox records (apps.events.outbox calls `live_broadcast` with the
events it writes, whether or not events go to Kafka), as the same CloudEvents envelope, plus the
lines of run logs. A run's event goes to the streams of the run, its job and its job's team; a
job's or schedule's to the job's and the team's.

Sending is a thread's work (LiveSender): the process that changed the run only hands it the
messages, so a worker's hot path waits for no Redis. The thread numbers each message in its
stream's backlog, then sends it to the stream's Channels group: on the event loop that serves this
process's WebSockets when there is one (the in-memory layer of `make dev` only works there), on its
own loop otherwise. A message the thread could not send is counted and dropped: the clients of
its stream see no gap in its numbers, so the pages also reload from the REST API now and then."""

import asyncio
import atexit
import logging
import os
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from queue import Empty, SimpleQueue
from typing import Any

from channels.layers import get_channel_layer
from django.db import transaction
from prometheus_client import Counter

from apps.events.envelope import envelope
from apps.events.models import OutboxEvent
from apps.jobs.models import Job
from apps.live.streams import backlog

logger = logging.getLogger(__name__)

SENT = Counter("dts_live_messages_sent", "Messages sent to the WebSocket streams")
FAILED = Counter("dts_live_messages_failed", "Messages the live sender could not send (dropped)")
SEND_TIMEOUT_SECONDS = 10
EXIT_WAIT_SECONDS = 5
BATCH = 500

Message = tuple[list[str], dict[str, Any]]


def group_name(stream: str) -> str:
    return f"dts.{stream}"


def live_broadcast(events: Iterable[OutboxEvent]) -> None:
    """Send `events` to their streams after the current transaction commits (now, outside one)."""
    messages = [(event_streams(event), envelope(event)) for event in events]
    if messages:
        transaction.on_commit(lambda: live_sender().put(messages))


def live_broadcast_log(*, run_id: Any, lines: Sequence[dict[str, Any]]) -> None:
    """Send new lines of a run's log to the run's stream (only: the job's and team's streams
    carry changes of state)."""
    message = {"type": "dts.run.log", "data": {"run_id": str(run_id), "lines": list(lines)}}
    live_sender().put([([f"run.{run_id}"], message)])


def event_streams(event: OutboxEvent) -> list[str]:
    streams = [f"job.{event.job_id}"]
    team_id = job_team_id(event.job_id)
    if team_id is not None:
        streams.append(f"team.{team_id}")
    if "run_id" in event.data:
        streams.append(f"run.{event.data['run_id']}")
    return streams


@lru_cache(maxsize=10_000)
def job_team_id(job_id: int) -> int | None:
    """A job's team: it never changes (apps.jobs.admin keeps it), so it is remembered."""
    return Job.objects.filter(id=job_id).values_list("team_id", flat=True).first()


_serving_loop: asyncio.AbstractEventLoop | None = None


def live_loop_serving(loop: asyncio.AbstractEventLoop) -> None:
    """Note the event loop that serves this process's WebSockets (the consumers call it)."""
    global _serving_loop
    _serving_loop = loop


class LiveSender:
    def __init__(self) -> None:
        self.queue: SimpleQueue[list[Message]] = SimpleQueue()
        self.pending = 0  # messages put and not yet sent (or dropped)
        self.settled = threading.Condition()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self._run, name="dts-live-sender", daemon=True).start()
        # A process that exits normally (a worker's warm shutdown) sends what it has first.
        atexit.register(self.wait_idle, EXIT_WAIT_SECONDS)

    def put(self, messages: list[Message]) -> None:
        with self.settled:
            self.pending += len(messages)
        self.queue.put(messages)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every message put has been sent (or dropped)."""
        with self.settled:
            return self.settled.wait_for(lambda: self.pending == 0, timeout)

    def _run(self) -> None:
        while True:
            batch = self.queue.get()
            try:
                while len(batch) < BATCH:
                    batch += self.queue.get_nowait()
            except Empty:
                pass
            try:
                self._send(batch)
                SENT.inc(len(batch))
            except Exception:
                FAILED.inc(len(batch))
                logger.exception("Could not send %s live messages; dropped", len(batch))
            with self.settled:
                self.pending -= len(batch)
                self.settled.notify_all()

    def _send(self, batch: list[Message]) -> None:
        """Number the batch's messages in one round trip, then send each stream's, in order, as
        one group message, the streams side by side."""
        numbered = backlog().append(
            [(stream, message) for streams, message in batch for stream in streams]
        )
        by_stream: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for message, stream in zip(numbered, _streams_of(batch), strict=True):
            by_stream[stream].append(message)
        sending = _group_send(by_stream)
        loop = _serving_loop
        if loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(sending, loop).result(SEND_TIMEOUT_SECONDS)
        else:
            self.loop.run_until_complete(asyncio.wait_for(sending, SEND_TIMEOUT_SECONDS))


def _streams_of(batch: list[Message]) -> Iterator[str]:
    for streams, _ in batch:
        yield from streams


async def _group_send(by_stream: dict[str, list[dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("CHANNEL_LAYERS has no default layer")

    await asyncio.gather(
        *(
            layer.group_send(
                group_name(stream),
                {"type": "live.messages", "stream": stream, "messages": messages},
            )
            for stream, messages in by_stream.items()
        )
    )


_senders: dict[int, LiveSender] = {}
_senders_lock = threading.Lock()


def live_sender() -> LiveSender:
    """This process's sender (a forked worker starts its own)."""
    with _senders_lock:
        sender = _senders.get(os.getpid())
        if sender is None:
            sender = _senders[os.getpid()] = LiveSender()
        return sender
