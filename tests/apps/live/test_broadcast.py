import secrets
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY

from apps.events.models import EventType
from apps.events.outbox import event_new
from apps.live import broadcast, streams
from apps.live.broadcast import LiveSender, live_broadcast, live_sender_drain
from tests.factories import JobFactory


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


@pytest.mark.django_db
def test_the_events_of_many_jobs_read_their_teams_in_one_query(
    monkeypatch, django_assert_num_queries
):
    """A scheduler's tick announces thousands of fires at once: one query, not one per job."""
    jobs = [JobFactory() for _ in range(50)]
    events = [
        event_new(type=EventType.JOB_UPDATED, subject=f"jobs/{job.id}", job_id=job.id, data={})
        for job in jobs
    ]
    put = []
    monkeypatch.setattr(broadcast, "live_sender", lambda: SimpleNamespace(put=put.extend))

    with django_assert_num_queries(1):
        live_broadcast(events)
    with django_assert_num_queries(0):  # remembered
        live_broadcast(events)

    assert [streams for streams, _ in put[:50]] == [
        [f"job.{job.id}", f"team.{job.team_id}"] for job in jobs
    ]
