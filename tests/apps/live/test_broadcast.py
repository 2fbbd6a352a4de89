from prometheus_client import REGISTRY

from apps.live import streams
from apps.live.broadcast import LiveSender
from apps.live.streams import backlog


def dropped() -> float:
    return REGISTRY.get_sample_value("dts_live_messages_dropped_total") or 0.0


def test_messages_a_push_drops_beyond_the_pending_limit_are_counted(monkeypatch):
    monkeypatch.setattr(streams, "PENDING_LIMIT", 2)
    backlog().take()  # what earlier tests left
    sender, before = LiveSender(), dropped()

    sender.put([(["job.1"], {"n": n}) for n in range(5)])

    assert sender.wait_idle(5)
    assert dropped() - before == 3
    assert [message["n"] for _, message in backlog().take()] == [3, 4]
