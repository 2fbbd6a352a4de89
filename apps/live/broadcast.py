"""Broadcasting changes to the streams that follow them, once their transaction has committed.

What is broadcast is what is recorded, as apps.events.subscribers announces it after commit (this
app subscribes in its ready()): the outbox's events, whether or not they go to Kafka, in the same
CloudEvents envelope, and the lines of run logs. A run's event goes to the streams of the run, its
job and its job's team; a job's or schedule's to the job's and the team's.

Two halves (apps.live.streams says where messages wait in between):
- the process that made the change hands the messages to its LiveSender thread, which pushes what
  has queued up in one round trip: a worker's hot path waits for no Redis and numbers nothing;
- each web process with WebSockets open runs a relay on the event loop that serves them: it takes
  the pending messages (numbering them in their streams as it takes them), and sends each stream's,
  in order, as one message to the stream's Channels group. With no WebSocket open anywhere, no
  work is done and pending messages expire.
A message that cannot be pushed or sent is counted and dropped: the clients of its stream see no
gap in its numbers, so the pages also reload from the REST API now and then."""

import asyncio
import atexit
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from queue import Empty, SimpleQueue
from typing import Any

from channels.layers import get_channel_layer
from prometheus_client import Counter

from apps.events.envelope import envelope
from apps.events.models import WORKFLOW_EVENT_PREFIX, OutboxEvent
from apps.jobs.models import Job
from apps.live.streams import Pending, backlog

logger = logging.getLogger(__name__)

PUSHED = Counter("dts_live_messages_pushed", "Messages handed over to the live relays")
SENT = Counter("dts_live_messages_sent", "Messages the live relay sent to WebSocket groups")
FAILED = Counter(
    "dts_live_messages_failed", "Live messages that could not be pushed or sent (dropped)"
)
DROPPED = Counter(
    "dts_live_messages_dropped",
    "Pending live messages dropped untaken, beyond the pending list's limit: no WebSocket is open "
    "anywhere, or the relays lag",
)
SEND_TIMEOUT_SECONDS = 10
EXIT_WAIT_SECONDS = 5
RELAY_WAIT_SECONDS = 1.0
RELAY_RETRY_SECONDS = 1.0
BATCH = 500
# A sender waits this long after a message for more, and pushes them all in one round trip: a busy
# worker process pushes about once per ten runs rather than once per run (bench.execution); the live
# pages get each message up to this much later (bench.live's p99 goal is 250 ms).
LINGER_SECONDS = 0.05


def group_name(stream: str) -> str:
    return f"dts.{stream}"


def live_broadcast(events: Iterable[OutboxEvent]) -> None:
    """Send committed `events` to their streams (a subscriber of apps.events.subscribers)."""
    events = list(events)
    of_jobs = [event for event in events if not event.type.startswith(WORKFLOW_EVENT_PREFIX)]
    teams = jobs_team_ids({event.job_id for event in of_jobs})
    messages = [
        (event_streams(event, teams.get(event.job_id)), envelope(event)) for event in events
    ]
    if messages:
        live_sender().put(messages)


def live_broadcast_log(run_id: str, lines: Sequence[dict[str, Any]]) -> None:
    """Send new lines of a run's log to the run's stream (only: the job's and team's streams
    carry changes of state)."""
    message = {"type": "dts.run.log", "data": {"run_id": str(run_id), "lines": list(lines)}}
    live_sender().put([([f"run.{run_id}"], message)])


def event_streams(event: OutboxEvent, team_id: int | None) -> list[str]:
    """The streams of `event`, of a job of team `team_id` (None: the job is gone); a workflow
    run's event goes to the workflow run's stream only."""
    if event.type.startswith(WORKFLOW_EVENT_PREFIX):
        return [f"workflow_run.{event.data['workflow_run_id']}"]
    streams = [f"job.{event.job_id}"]
    if team_id is not None:
        streams.append(f"team.{team_id}")
    if "run_id" in event.data:
        streams.append(f"run.{event.data['run_id']}")
    return streams


def jobs_team_ids(job_ids: set[int]) -> dict[int, int | None]:
    """Each job's team (None for a job that is gone). A job's team never changes
    (apps.jobs.admin keeps it), so it is remembered: the jobs not seen yet are read in one
    query, however many events a batch holds (a scheduler's tick: thousands)."""
    unknown = job_ids - _job_teams.keys()
    if unknown:
        if len(_job_teams) + len(unknown) > JOB_TEAMS_KEPT:
            _job_teams.clear()
        found = dict(Job.objects.filter(id__in=unknown).values_list("id", "team_id"))
        _job_teams.update({job_id: found.get(job_id) for job_id in unknown})
    return {job_id: _job_teams[job_id] for job_id in job_ids}


# The teams of the jobs this process has sent events of, up to JOB_TEAMS_KEPT.
_job_teams: dict[int, int | None] = {}
JOB_TEAMS_KEPT = 100_000


class LiveSender:
    """Pushes the messages a process hands it, from a thread of its own."""

    def __init__(self) -> None:
        self.queue: SimpleQueue[list[Pending]] = SimpleQueue()
        self.pending = 0  # messages put and not yet pushed (or dropped)
        self.settled = threading.Condition()
        threading.Thread(target=self._run, name="dts-live-sender", daemon=True).start()
        # A process that exits normally pushes what it has first (a pool process, which exits
        # without running atexit, calls live_sender_drain: workers.signals).
        atexit.register(self.wait_idle, EXIT_WAIT_SECONDS)

    def put(self, messages: list[Pending]) -> None:
        with self.settled:
            self.pending += len(messages)
        self.queue.put(messages)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every message put has been pushed (or dropped)."""
        with self.settled:
            return self.settled.wait_for(lambda: self.pending == 0, timeout)

    def _run(self) -> None:
        while True:
            batch = self.queue.get()
            time.sleep(LINGER_SECONDS)  # let a burst gather: one push for all of it
            try:
                while len(batch) < BATCH:
                    batch += self.queue.get_nowait()
            except Empty:
                pass
            try:
                dropped = backlog().push(batch)
                PUSHED.inc(len(batch))
                DROPPED.inc(dropped)
            except Exception:
                FAILED.inc(len(batch))
                logger.exception("Could not push %s live messages; dropped", len(batch))
            with self.settled:
                self.pending -= len(batch)
                self.settled.notify_all()


_senders: dict[int, LiveSender] = {}
_senders_lock = threading.Lock()


def live_sender() -> LiveSender:
    """This process's sender (a forked worker starts its own)."""
    with _senders_lock:
        sender = _senders.get(os.getpid())
        if sender is None:
            sender = _senders[os.getpid()] = LiveSender()
        return sender


def live_sender_drain() -> None:
    """Wait until this process's sender has pushed what it was handed, if it has a sender."""
    sender = _senders.get(os.getpid())
    if sender is not None:
        sender.wait_idle(EXIT_WAIT_SECONDS)


_relays: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}


def live_relay_ensure() -> None:
    """Run the relay on the running event loop (the one serving this process's WebSockets)."""
    loop = asyncio.get_running_loop()
    relay = _relays.get(loop)
    if relay is None or relay.done():
        _relays[loop] = loop.create_task(_relay(), name="dts-live-relay")


async def _relay() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("CHANNEL_LAYERS has no default layer")
    while True:
        try:
            # Two steps, so a relay cancelled while waiting (its loop ending) takes nothing.
            await asyncio.to_thread(backlog().wait, RELAY_WAIT_SECONDS)
            numbered = await asyncio.to_thread(backlog().take)
        except Exception:
            logger.exception("Live relay cannot take pending messages; trying again")
            await asyncio.sleep(RELAY_RETRY_SECONDS)
            continue
        by_stream: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for stream, message in numbered:
            by_stream[stream].append(message)
        sent = await asyncio.gather(
            *(
                asyncio.wait_for(
                    layer.group_send(
                        group_name(stream),
                        {"type": "live.messages", "stream": stream, "messages": messages},
                    ),
                    SEND_TIMEOUT_SECONDS,
                )
                for stream, messages in by_stream.items()
            ),
            return_exceptions=True,
        )
        for outcome, messages in zip(sent, by_stream.values(), strict=True):
            if isinstance(outcome, BaseException):
                FAILED.inc(len(messages))
                logger.error("Could not send %s live messages: %r", len(messages), outcome)
            else:
                SENT.inc(len(messages))
