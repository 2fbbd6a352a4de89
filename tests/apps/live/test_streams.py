import secrets
import threading
import time
from datetime import UTC, datetime

import pytest

from apps.live import streams
from apps.live.streams import MemoryBacklog, Position, RedisBacklog


def append(backlog, items):
    """Hand `items` ((stream, message) pairs) over and take them, numbered, as a relay does."""
    backlog.push([([stream], message) for stream, message in items])
    ours = {stream for stream, _ in items}
    return [message for stream, message in backlog.take() if stream in ours]


@pytest.fixture(params=["redis", "memory"])
def backlog(request):
    return request.getfixturevalue("redis_backlog") if request.param == "redis" else MemoryBacklog()


@pytest.fixture
def stream():
    return f"job.{secrets.randbelow(10**9)}"


def test_a_batch_is_numbered_in_order_in_each_of_its_streams(backlog, stream):
    other = f"{stream}0"

    numbered = append(backlog, [(stream, {"n": 1}), (other, {"n": 2}), (stream, {"n": 3})])

    assert [(m["n"], m["seq"]) for m in numbered] == [(1, 1), (2, 1), (3, 2)]
    assert numbered[0]["epoch"] == numbered[2]["epoch"] != numbered[1]["epoch"]
    kept = backlog.after(stream, Position(numbered[0]["epoch"], 0))
    assert [m["n"] for m in kept] == [1, 3]


def test_messages_are_numbered_from_the_position_a_new_client_is_given(backlog, stream):
    start = backlog.position(stream)

    first = append(backlog, [(stream, {"n": 1})])[0]
    second = append(backlog, [(stream, {"n": 2})])[0]

    assert start.seq == 0
    assert (first["epoch"], first["seq"], second["seq"]) == (start.epoch, 1, 2)
    assert backlog.position(stream) == Position(start.epoch, 2)


def test_a_client_gets_what_came_after_its_position_in_order(backlog, stream):
    epoch = backlog.position(stream).epoch
    for n in range(1, 6):
        append(backlog, [(stream, {"n": n})])[0]

    assert [m["n"] for m in backlog.after(stream, Position(epoch, 2))] == [3, 4, 5]
    assert backlog.after(stream, Position(epoch, 5)) == []


@pytest.mark.parametrize("position", [Position("0123", 1), "ahead"])
def test_a_position_of_another_epoch_or_ahead_asks_for_a_resync(backlog, stream, position):
    epoch = append(backlog, [(stream, {"n": 1})])[0]["epoch"]
    position = Position(epoch, 9) if position == "ahead" else position

    assert backlog.after(stream, position) is None


def test_a_position_older_than_what_is_kept_asks_for_a_resync(backlog, stream, monkeypatch):
    monkeypatch.setattr(streams, "BACKLOG_LENGTH", 3)
    epoch = backlog.position(stream).epoch
    for n in range(1, 7):
        append(backlog, [(stream, {"n": n})])[0]

    assert backlog.after(stream, Position(epoch, 1)) is None
    assert [m["n"] for m in backlog.after(stream, Position(epoch, 3))] == [4, 5, 6]


def test_a_stream_past_its_keeping_time_starts_a_new_epoch(backlog, stream, settings):
    settings.DTS_LIVE_BACKLOG_SECONDS = 1
    old = append(backlog, [(stream, {"n": 1})])[0]["epoch"]
    if isinstance(backlog, RedisBacklog):
        backlog.redis.delete(*RedisBacklog._keys(stream))  # as its keys expiring does
    else:
        backlog.streams[stream] = (*backlog.streams[stream][:2], 0.0)

    new = append(backlog, [(stream, {"n": 2})])[0]

    assert new["epoch"] != old
    assert new["seq"] == 1
    assert backlog.after(stream, Position(old, 1)) is None


def test_a_message_belongs_to_each_of_its_streams_numbered_in_each(backlog, stream):
    backlog.push([([stream, f"{stream}0"], {"n": 1})])

    taken = [(s, m["seq"], m["n"]) for s, m in backlog.take() if s.startswith(stream)]

    assert taken == [(stream, 1, 1), (f"{stream}0", 1, 1)]


def test_a_relay_waiting_is_woken_by_a_push(backlog, stream):
    waker = threading.Timer(0.2, backlog.push, args=[[([stream], {"n": 1})]])
    waker.start()
    started = time.monotonic()

    backlog.wait(5)

    assert time.monotonic() - started < 4
    assert [m["n"] for s, m in backlog.take() if s == stream] == [1]


def test_pending_messages_no_relay_takes_expire(redis_backlog, stream):
    redis_backlog.push([([stream], {"n": 1})])

    assert 0 < redis_backlog.redis.ttl(redis_backlog.PENDING) <= streams.PENDING_SECONDS


@pytest.mark.parametrize("kind", [RedisBacklog, MemoryBacklog])
def test_at_most_the_limit_waits_and_a_push_beyond_it_drops_the_oldest(
    kind, stream, monkeypatch, redis_backlog
):
    monkeypatch.setattr(streams, "PENDING_LIMIT", 5)
    backlog = redis_backlog if kind is RedisBacklog else kind()  # its deque's length: the limit

    dropped = [
        backlog.push([([stream], {"n": n}) for n in batch]) for batch in ([1, 2, 3], [4, 5, 6, 7])
    ]

    assert dropped == [0, 2]
    assert [m["n"] for s, m in backlog.take() if s == stream] == [3, 4, 5, 6, 7]


def test_a_redis_stream_expires_after_its_keeping_time(redis_backlog, stream, settings):
    settings.DTS_LIVE_BACKLOG_SECONDS = 120

    append(redis_backlog, [(stream, {"n": 1})])[0]

    assert all(0 < redis_backlog.redis.ttl(key) <= 120 for key in RedisBacklog._keys(stream))


def test_dates_and_times_of_an_events_data_travel_as_text(backlog, stream):
    at = datetime(2026, 11, 27, 10, 0, 0, 123000, tzinfo=UTC)

    [message] = append(backlog, [(stream, {"data": {"next_attempt_at": at, "n": 1}})])

    assert message["data"] == {"next_attempt_at": "2026-11-27T10:00:00.123Z", "n": 1}
