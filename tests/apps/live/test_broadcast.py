import secrets

import pytest
from django.conf import settings
from prometheus_client import REGISTRY

from apps.live import broadcast, streams
from apps.live.broadcast import LiveSender, live_sender_drain
from apps.live.streams import RedisBacklog


def dropped() -> float:
    return REGISTRY.get_sample_value("dts_live_messages_dropped_total") or 0.0


@pytest.fixture
def private_backlog(monkeypatch):
    """The real Redis backlog, with a pending list of this test's own: what earlier tests (or
    other test runs on the same Redis) push, and a relay any of them left running, neither add
    to it nor take from it."""
    live_sender_drain()  # this process's sender pushes nothing of an earlier test meanwhile
    backlog = RedisBacklog(settings.DTS_LIVE_REDIS_URL)
    backlog.PENDING = f"{RedisBacklog.PENDING}:test-{secrets.token_hex(8)}"
    monkeypatch.setattr(broadcast, "backlog", lambda: backlog)
    yield backlog
    backlog.redis.delete(backlog.PENDING)


def test_messages_a_push_drops_beyond_the_pending_limit_are_counted(private_backlog, monkeypatch):
    monkeypatch.setattr(streams, "PENDING_LIMIT", 2)
    stream = f"job.{secrets.randbelow(10**9)}"
    sender, before = LiveSender(), dropped()

    sender.put([([stream], {"n": n}) for n in range(5)])

    assert sender.wait_idle(5)
    assert dropped() - before == 3
    assert [message["n"] for _, message in private_backlog.take()] == [3, 4]
