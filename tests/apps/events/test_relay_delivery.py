"""The relay's own bookkeeping, with a fake Kafka producer (the real Kafka is in test_relay.py):
what it marks published when Kafka refuses some events of a batch, and the order a job's events go
out in when its runs commit at the same time (docs/events.md, "Order")."""

import threading
from collections import defaultdict

import pytest
from confluent_kafka import KafkaError
from django.db import connection, transaction

from apps.events.models import OutboxEvent
from apps.events.outbox import event_new, events_record
from apps.events.relay import DeliveryFailed, Relay
from apps.runs.services.build import run_trigger
from apps.runs.services.moves import run_attempt_end, run_start
from apps.runs.states import RunState
from tests.factories import JobFactory


class FakeProducer:
    """Takes messages as confluent_kafka's Producer does; at flush it reports each delivered but
    those whose event id is in `refused` (a delivery error) or `stuck` (still queued)."""

    def __init__(self, refused: set[str] = frozenset(), stuck: set[str] = frozenset()) -> None:
        self.refused, self.stuck = set(refused), set(stuck)
        self.pending: list[tuple[str, object]] = []
        self.sent: list[dict] = []

    def produce(self, topic, *, key, value, headers, on_delivery) -> None:
        event_id = headers["ce_id"]
        self.sent.append({"key": key.decode(), "id": event_id})
        self.pending.append((event_id, on_delivery))

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float | None = None) -> int:
        still_queued = 0
        for event_id, on_delivery in self.pending:
            if event_id in self.stuck:
                still_queued += 1
            elif event_id in self.refused:
                on_delivery(KafkaError(KafkaError._MSG_TIMED_OUT), None)
            else:
                on_delivery(None, None)
        self.pending = []
        return still_queued


def relay_with(producer: FakeProducer) -> Relay:
    return Relay(producer=producer, batch_size=100, stop=threading.Event())


def outbox(*job_ids: int) -> list[OutboxEvent]:
    """One event per job id given, in that order; returned as stored (with their sequence)."""
    events = [
        event_new(type="dts.job.updated", subject=f"jobs/{job_id}", job_id=job_id, data={})
        for job_id in job_ids
    ]
    events_record(events)
    return list(OutboxEvent.objects.order_by("sequence"))


def unpublished() -> list[str]:
    return [
        str(event_id)
        for event_id in OutboxEvent.objects.filter(published_at__isnull=True)
        .order_by("sequence")
        .values_list("event_id", flat=True)
    ]


def ids(events: list[OutboxEvent]) -> list[str]:
    return [str(event.event_id) for event in events]


@pytest.mark.django_db
def test_an_event_kafka_refused_and_its_jobs_later_events_stay_unpublished():
    events = outbox(1, 2, 1, 2, 1, 3, 1)
    job_1 = [event for event in events if event.job_id == 1]
    refused = job_1[1]

    with pytest.raises(DeliveryFailed, match="Kafka did not acknowledge 1 of 7 events"):
        relay_with(FakeProducer(refused={str(refused.event_id)})).publish_batch()

    # Job 1's first event went out before the refused one; its later ones wait with it, so they
    # are sent again after it. Jobs 2 and 3 go on.
    assert unpublished() == ids(job_1[1:])

    again = FakeProducer()
    assert relay_with(again).publish_batch() == 3
    assert [message["id"] for message in again.sent] == ids(job_1[1:])
    assert unpublished() == []


@pytest.mark.django_db
def test_events_still_queued_when_the_wait_ends_stay_unpublished():
    events = outbox(1, 2, 1, 2)
    stuck = events[-1]  # a producer that gives up leaves its last messages queued

    with pytest.raises(DeliveryFailed, match="1 still queued"):
        relay_with(FakeProducer(stuck={str(stuck.event_id)})).publish_batch()

    assert unpublished() == ids([stuck])


@pytest.mark.django_db
def test_a_batch_kafka_acknowledged_is_published_in_sequence_order():
    events = outbox(1, 2, 1, 3)
    producer = FakeProducer()

    assert relay_with(producer).publish_batch() == 4

    assert producer.sent == [{"key": str(e.job_id), "id": str(e.event_id)} for e in events]
    assert unpublished() == []


@pytest.mark.django_db(transaction=True)
def test_a_runs_events_go_out_in_order_and_a_concurrent_runs_in_the_order_the_relay_read_them(
    sent_tasks,  # no worker of the session runs them: this test plays the workers
):
    job = JobFactory(task_type="dts.noop", args={})
    first, second = run_trigger(job=job), run_trigger(job=job)
    started = threading.Event()
    commit = threading.Event()

    def start_second_and_wait() -> None:
        # Another worker starting the second run: its event takes a sequence number now but is
        # committed only after the first run has ended.
        try:
            with transaction.atomic():
                run_start(run_id=second.id, attempt=1, worker="worker-b", limited=True)
                started.set()
                commit.wait(30)
        finally:
            connection.close()

    other_worker = threading.Thread(target=start_second_and_wait)
    other_worker.start()
    try:
        assert started.wait(30)
        run_start(run_id=first.id, attempt=1, worker="worker-a")
        run_attempt_end(run_id=first.id, attempt=1, outcome=RunState.SUCCEEDED)
        producer = FakeProducer()
        relay_with(producer).publish_batch()  # sees all but the second run's start
    finally:
        commit.set()
        other_worker.join(30)
    relay_with(producer).publish_batch()
    run_attempt_end(run_id=second.id, attempt=1, outcome=RunState.SUCCEEDED)
    relay_with(producer).publish_batch()

    events = {str(event.event_id): event for event in OutboxEvent.objects.all()}
    published = [events[message["id"]] for message in producer.sent]
    by_run: dict[str, list[str]] = defaultdict(list)
    for event in published:
        by_run[event.subject].append(event.data.get("state", event.type))
    assert dict(by_run) == {
        f"runs/{first.id}": ["queued", "running", "succeeded"],
        f"runs/{second.id}": ["queued", "running", "succeeded"],
    }
    # Across the two runs, the order is the relay's: the second run's start, numbered before the
    # first run's later events, committed after them and went out after them.
    second_started = next(
        e for e in published if e.subject == f"runs/{second.id}" and e.data["state"] == "running"
    )
    first_ended = published[published.index(second_started) - 1]
    assert (first_ended.subject, first_ended.data["state"]) == (f"runs/{first.id}", "succeeded")
    assert second_started.sequence < first_ended.sequence
    assert [message["key"] for message in producer.sent] == [str(job.id)] * len(published)
