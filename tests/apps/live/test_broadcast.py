import secrets

import pytest
from prometheus_client import REGISTRY

from apps.live import broadcast, streams
from apps.live.broadcast import LiveSender, live_sender_drain


def dropped() -> float:
    return REGISTRY.get_sample_value("dts_live_messages_dropped_total") or 0.0


@pytest.fixture
def private_backlog(redis_backlog, monkeypatch):
    """This process's sender and relay push to and take from a backlog of this test's own."""
    live_sender_drain()  # this process's sender pushes nothing of an earlier test meanwhile
    monkeypatch.setattr(broadcast, "backlog", lambda: redis_backlog)
    return redis_backlog


def test_messages_a_push_drops_beyond_the_pending_limit_are_counted(private_backlog, monkeypatch):
    monkeypatch.setattr(streams, "PENDING_LIMIT", 2)
    stream = f"job.{secrets.randbelow(10**9)}"
    sender, before = LiveSender(), dropped()

    sender.put([([stream], {"n": n}) for n in range(5)])

    assert sender.wait_idle(5)
    assert dropped() - before == 3
    assert [message["n"] for _, message in private_backlog.take()] == [3, 4]
