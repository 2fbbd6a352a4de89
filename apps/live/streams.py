"""Streams: what a WebSocket follows, each a sequence of numbered messages.

A stream is named after what it follows: `team.<id>` (the runs of a team: the dashboard),
`job.<id>` and `run.<uuid>`. Each message gets the next number of its stream, and the stream keeps
its last messages (its backlog) for a while, so a client that reconnects asks for what came after
the last number it saw. A stream also has an epoch, drawn when it starts (or starts again, after
its backlog expired or Redis lost it): numbers are only comparable within an epoch, and a client
whose epoch or number the backlog no longer covers reloads from the REST API instead (a resync).

Messages reach the streams in two steps (apps.live.broadcast): the process that made a change
pushes them, with the streams each belongs to, onto a pending list, cheaply; a web process takes
them from it, numbering and keeping them in their streams as it takes them, and sends them to its
WebSockets' groups. Pending messages nobody takes (no web process has a WebSocket open) expire,
and at most PENDING_LIMIT wait: beyond it the oldest are dropped, so workers that keep pushing
while no relay takes cannot fill Redis.

All of it lives in Redis (DTS_LIVE_REDIS_URL), shared by every process, or, in `make dev`, in the
memory of its single process."""

import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol, cast

import redis
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

# Messages a client could still need: enough for a reconnect after a short outage.
BACKLOG_LENGTH = 1000
# Messages taken and numbered per round trip.
TAKE_BATCH = 500
# Pending messages expire when no web process has taken any for this long.
PENDING_SECONDS = 60
# The most messages that wait to be taken; a push beyond it drops the oldest.
PENDING_LIMIT = 10 * TAKE_BATCH

# What a process hands over: a message and the streams it belongs to.
Pending = tuple[list[str], dict[str, Any]]


@dataclass(frozen=True)
class Position:
    epoch: str
    seq: int


class Backlog(Protocol):
    def push(self, pending: Sequence[Pending]) -> int:
        """Hand messages over, to be numbered in their streams and sent; return how many of the
        oldest waiting were dropped to keep at most PENDING_LIMIT waiting."""

    def wait(self, timeout: float) -> None:
        """Return when messages may be pending, or after `timeout` seconds."""

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        """Take the pending messages, number each in each of its streams and keep it there; the
        numbered messages (with `epoch` and `seq`) with their stream, in order."""

    def position(self, stream: str) -> Position:
        """The stream's epoch and last number (0 before its first message)."""

    def after(self, stream: str, position: Position) -> list[dict[str, Any]] | None:
        """The kept messages after `position`, oldest first; None when the backlog cannot tell
        (another epoch, or messages since then no longer kept): the client must resync."""


class RedisBacklog:
    """`dts:live:pending` (a list) and `dts:live:bell` (a list of at most one item, for waiting);
    per stream `<prefix>:epoch`, `<prefix>:seq` and `<prefix>:log` (a sorted set of messages scored
    by number), all expiring DTS_LIVE_BACKLOG_SECONDS after the stream's last message."""

    PENDING, BELL = "dts:live:pending", "dts:live:bell"

    # Taking and numbering are one script, so messages are numbered in the order they were
    # pushed, however many web processes take them, and a stream that lost its epoch starts a
    # new one. ARGV: a fresh epoch, how many to take, the backlog's length and keeping time.
    TAKE = """
    local taken = redis.call('LPOP', KEYS[1], ARGV[2])
    if not taken then return {} end
    local numbered, fresh = {}, 0
    for _, item in ipairs(taken) do
        local pending = cjson.decode(item)
        for _, stream in ipairs(pending[1]) do
            local prefix = 'dts:live:' .. stream
            local epoch_key = prefix .. ':epoch'
            local seq_key, log_key = prefix .. ':seq', prefix .. ':log'
            local epoch = redis.call('GET', epoch_key)
            if not epoch then
                fresh = fresh + 1
                epoch = ARGV[1] .. string.format('%x', fresh)
                redis.call('SET', epoch_key, epoch)
                redis.call('DEL', seq_key, log_key)
            end
            local seq = redis.call('INCR', seq_key)
            redis.call('ZADD', log_key, seq, seq .. ' ' .. pending[2])
            redis.call('ZREMRANGEBYRANK', log_key, 0, -tonumber(ARGV[3]) - 1)
            for _, key in ipairs({epoch_key, seq_key, log_key}) do
                redis.call('EXPIRE', key, ARGV[4])
            end
            table.insert(numbered, {stream, epoch, seq, pending[2]})
        end
    end
    return numbered
    """

    def __init__(self, url: str) -> None:
        self.redis = redis.Redis.from_url(url, decode_responses=True)
        self.script = self.redis.register_script(self.TAKE)

    def push(self, pending: Sequence[Pending]) -> int:
        items = [json.dumps([streams, _json(message)]) for streams, message in pending]
        # One transaction: the length the push returns is the one its trim cuts down.
        pipeline = self.redis.pipeline()
        pipeline.rpush(self.PENDING, *items)
        pipeline.ltrim(self.PENDING, -PENDING_LIMIT, -1)
        pipeline.expire(self.PENDING, PENDING_SECONDS)
        pipeline.lpush(self.BELL, 1)
        pipeline.ltrim(self.BELL, 0, 0)
        length = pipeline.execute()[0]
        return max(0, length - PENDING_LIMIT)

    def wait(self, timeout: float) -> None:
        self.redis.blpop([self.BELL], timeout=timeout)

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        numbered: list[tuple[str, dict[str, Any]]] = []
        while True:
            rows = cast(
                list[list[Any]],
                self.script(
                    keys=[self.PENDING],
                    args=[
                        secrets.token_hex(8),
                        TAKE_BATCH,
                        BACKLOG_LENGTH,
                        settings.DTS_LIVE_BACKLOG_SECONDS,
                    ],
                ),
            )
            numbered += [
                (stream, {**json.loads(text), "epoch": epoch, "seq": int(seq)})
                for stream, epoch, seq, text in rows
            ]
            if len(rows) < TAKE_BATCH:
                return numbered

    def position(self, stream: str) -> Position:
        epoch_key, seq_key, _ = self._keys(stream)
        epoch, seq = self.redis.mget(epoch_key, seq_key)
        if epoch is None:
            # A stream that has not started: the number its first message will follow.
            self.redis.set(epoch_key, secrets.token_hex(8), nx=True)
            self.redis.expire(epoch_key, settings.DTS_LIVE_BACKLOG_SECONDS)
            epoch, seq = self.redis.mget(epoch_key, seq_key)
        return Position(epoch=str(epoch), seq=int(seq or 0))

    def after(self, stream: str, position: Position) -> list[dict[str, Any]] | None:
        current = self.position(stream)
        if current.epoch != position.epoch or position.seq > current.seq:
            return None
        if position.seq == current.seq:
            return []
        _, _, log_key = self._keys(stream)
        kept = cast(list[str], self.redis.zrangebyscore(log_key, position.seq + 1, "+inf"))
        messages = [self._decoded(entry, current.epoch) for entry in kept]
        if not messages or messages[0]["seq"] != position.seq + 1:
            return None
        return messages

    @staticmethod
    def _decoded(entry: str, epoch: str) -> dict[str, Any]:
        seq, _, text = entry.partition(" ")
        return {**json.loads(text), "epoch": epoch, "seq": int(seq)}

    @staticmethod
    def _keys(stream: str) -> list[str]:
        prefix = f"dts:live:{stream}"
        return [f"{prefix}:epoch", f"{prefix}:seq", f"{prefix}:log"]


class MemoryBacklog:
    """All of it in this process's memory, for `make dev` (one process, no Redis)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bell = threading.Event()
        self.pending: deque[Pending] = deque(maxlen=PENDING_LIMIT)
        self.streams: dict[str, tuple[Position, deque[dict[str, Any]], float]] = {}

    def push(self, pending: Sequence[Pending]) -> int:
        # As they would come back from Redis: JSON values only.
        normal = [(streams, json.loads(_json(message))) for streams, message in pending]
        with self.lock:
            dropped = max(0, len(self.pending) + len(normal) - PENDING_LIMIT)
            self.pending.extend(normal)
        self.bell.set()
        return dropped

    def wait(self, timeout: float) -> None:
        self.bell.wait(timeout)
        self.bell.clear()

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        with self.lock:
            taken, self.pending = list(self.pending), deque(maxlen=self.pending.maxlen)
            return [
                (stream, self._append(stream, message))
                for streams, message in taken
                for stream in streams
            ]

    def _append(self, stream: str, message: dict[str, Any]) -> dict[str, Any]:
        position, kept, _ = self._stream(stream)
        numbered = {**message, "epoch": position.epoch, "seq": position.seq + 1}
        kept.append(numbered)
        expires = time.monotonic() + settings.DTS_LIVE_BACKLOG_SECONDS
        self.streams[stream] = (Position(position.epoch, position.seq + 1), kept, expires)
        return numbered

    def position(self, stream: str) -> Position:
        with self.lock:
            return self._stream(stream)[0]

    def after(self, stream: str, position: Position) -> list[dict[str, Any]] | None:
        with self.lock:
            current, kept, _ = self._stream(stream)
            if current.epoch != position.epoch or position.seq > current.seq:
                return None
            messages = [message for message in kept if message["seq"] > position.seq]
            if messages and messages[0]["seq"] != position.seq + 1:
                return None
            return messages

    def _stream(self, stream: str) -> tuple[Position, deque[dict[str, Any]], float]:
        found = self.streams.get(stream)
        now = time.monotonic()
        if found is None or found[2] < now:
            expires = now + settings.DTS_LIVE_BACKLOG_SECONDS
            found = (Position(secrets.token_hex(8), 0), deque(maxlen=BACKLOG_LENGTH), expires)
            self.streams[stream] = found
        return found


def _json(message: dict[str, Any]) -> str:
    """A message as JSON; dates and times (in an event's data) as Django writes them."""
    return json.dumps(message, cls=DjangoJSONEncoder, separators=(",", ":"))


@cache
def backlog() -> Backlog:
    url = settings.DTS_LIVE_REDIS_URL
    return RedisBacklog(url) if url else MemoryBacklog()
