"""Streams: what a WebSocket follows, each a sequence of numbered messages.

A stream is named after what it follows: `team.<id>` (the runs of a team: the dashboard),
`job.<id>` and `run.<uuid>`. Each message gets the next number of its stream, and the stream keeps
its last messages (its backlog) for a while, so a client that reconnects asks for what came after
the last number it saw. A stream also has an epoch, drawn when it starts (or starts again, after
its backlog expired or Redis lost it): numbers are only comparable within an epoch, and a client
whose epoch or number the backlog no longer covers reloads from the REST API instead (a resync).

The backlog lives in Redis (DTS_LIVE_REDIS_URL), shared by every process, or, in `make dev`, in
the memory of its single process."""

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

# Messages a client could still need: enough for a reconnect after a short outage.
BACKLOG_LENGTH = 1000


@dataclass(frozen=True)
class Position:
    epoch: str
    seq: int


class Backlog(Protocol):
    def append(self, items: Sequence[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Number each message in its stream and keep it, in order; returns the messages with
        their `epoch` and `seq`."""

    def position(self, stream: str) -> Position:
        """The stream's epoch and last number (0 before its first message)."""

    def after(self, stream: str, position: Position) -> list[dict[str, Any]] | None:
        """The kept messages after `position`, oldest first; None when the backlog cannot tell
        (another epoch, or messages since then no longer kept): the client must resync."""


class RedisBacklog:
    """Per stream: `<prefix>:epoch`, `<prefix>:seq` and `<prefix>:log` (a sorted set of messages
    scored by number), all expiring DTS_LIVE_BACKLOG_SECONDS after the stream's last message."""

    # Numbering and keeping are one script (for a batch of messages: KEYS are each message's
    # three keys, ARGV a fresh epoch, the length and keeping time, then the messages), so two
    # processes appending to a stream at once still keep its messages in number order, and a
    # stream that lost its epoch starts a new one.
    APPEND = """
    local numbered = {}
    for i = 1, #KEYS / 3 do
        local epoch_key, seq_key, log_key = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
        local epoch = redis.call('GET', epoch_key)
        if not epoch then
            epoch = ARGV[1] .. string.format('%x', i)
            redis.call('SET', epoch_key, epoch)
            redis.call('DEL', seq_key, log_key)
        end
        local seq = redis.call('INCR', seq_key)
        redis.call('ZADD', log_key, seq, seq .. ' ' .. ARGV[3 + i])
        redis.call('ZREMRANGEBYRANK', log_key, 0, -tonumber(ARGV[2]) - 1)
        for _, key in ipairs({epoch_key, seq_key, log_key}) do
            redis.call('EXPIRE', key, ARGV[3])
        end
        numbered[i] = {epoch, seq}
    end
    return numbered
    """

    def __init__(self, url: str) -> None:
        self.redis = redis.Redis.from_url(url, decode_responses=True)
        self.script = self.redis.register_script(self.APPEND)

    def append(self, items: Sequence[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        if not items:
            return []
        numbered = self.script(
            keys=[key for stream, _ in items for key in self._keys(stream)],
            args=[
                secrets.token_hex(8),
                BACKLOG_LENGTH,
                settings.DTS_LIVE_BACKLOG_SECONDS,
                *(json.dumps(message, separators=(",", ":")) for _, message in items),
            ],
        )
        return [
            {**message, "epoch": epoch, "seq": int(seq)}
            for (_, message), (epoch, seq) in zip(items, numbered, strict=True)
        ]

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
    """The backlog in this process's memory, for `make dev` (one process, no Redis)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.streams: dict[str, tuple[Position, deque[dict[str, Any]], float]] = {}

    def append(self, items: Sequence[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        with self.lock:
            return [self._append(stream, message) for stream, message in items]

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


@cache
def backlog() -> Backlog:
    url = settings.DTS_LIVE_REDIS_URL
    return RedisBacklog(url) if url else MemoryBacklog()
