"""The relay: publishes the outbox to Kafka in the order it reads it, and marks what Kafka
acknowledged.

A relay publishes a batch while its database session holds a PostgreSQL advisory lock: relays (any
number of replicas) take turns, so batches never overlap and each goes out in `sequence` order,
whichever relay sends it. An event committed after others that were numbered later goes out after
them: a job's runs that commit at the same time are not ordered (docs/events.md, "Order"; writers
are not serialised for it). No transaction stays open while Kafka acknowledges a batch: its
snapshot would keep every writer's dead row versions from being pruned, which doubled the workers'
PostgreSQL CPU. A batch is marked published only once Kafka has
acknowledged it (idempotent producer, acks=all); a relay killed before that leaves its batch
unpublished, to be sent again: consumers drop the duplicates by event id (apps.events.consumer).
New rows wake an idle relay through a NOTIFY their insert fires while a relay has said it waits
(an IdleRelay row; see the events migrations): a busy relay reads new rows without being told,
and writers under load pay no NOTIFY. A writer that looked for a waiting relay just before one
said so is caught by the relay's look at the outbox a moment later (SETTLE_SECONDS).
While Kafka or the database is away the relay keeps running and tries again (backing off up to
DTS_RELAY_MAX_BACKOFF_SECONDS); it logs each outage once, a reminder each minute, and its end, and
shows it in `dts_dependency_up` (apps.core.outages). Any other error (Kafka refusing the topic's
settings, a bug) is logged with its traceback at each try. It creates the events topic when Kafka
first answers, not before it starts.
"""

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone
from prometheus_client import Counter, Gauge

from apps.core.liveness import Liveness
from apps.core.notify import Listener
from apps.core.outages import database_outage, database_unreachable, outage_for
from apps.events.envelope import envelope_bytes
from apps.events.kafka import events_topic, kafka_unreachable, librdkafka_logger, topics_ensure
from apps.events.models import OutboxEvent

logger = logging.getLogger(__name__)

CHANNEL = "dts_outbox"
# The advisory lock a relay holds while it publishes a batch ("dts-outbox" as an integer).
TURN_LOCK = 0x6474735F6F7574
# After saying it waits, a relay looks at the outbox again this soon: a writer may have checked
# for a waiting relay just before, and committed just after its last look.
SETTLE_SECONDS = 0.1
# How long a relay waiting out a Kafka outage waits for Kafka's answer each time it asks: a stop
# (SIGTERM) is handled at the latest this long after it arrives.
KAFKA_CHECK_TIMEOUT_SECONDS = 5.0

PUBLISHED = Counter("dts_events_published", "Events published to Kafka", ["type"])
FAILED = Counter("dts_events_failed", "Events Kafka did not acknowledge (sent again later)")
LAG = Gauge("dts_events_outbox_lag_seconds", "Age of the oldest unpublished event")
BACKLOG = Gauge("dts_events_outbox_backlog", "Unpublished events")
# A relay that reads full batches counts the unpublished events at most this often.
BACKLOG_COUNT_EVERY_SECONDS = 5.0


class DeliveryFailed(RuntimeError):
    """Kafka did not acknowledge some events of a batch (those stay unpublished)."""


class KafkaWatch:
    """What a relay knows of Kafka: whether it is in an outage (logged and in the metrics), and
    whether the producer has reported it unreachable since the relay last asked Kafka. Such a
    report only makes the relay ask: librdkafka queues its reports until the next poll, so one
    may arrive after Kafka has come back."""

    def __init__(self, *, address: str) -> None:
        self.outage = outage_for("Kafka", address)
        self.reported = threading.Event()

    def on_error(self, error: KafkaError) -> None:
        """The producer's error callback (apps.events.kafka.producer_new)."""
        if kafka_unreachable(error):
            self.reported.set()
        else:
            librdkafka_logger.warning("Kafka client error: %s", error.str())  # collapsed


@dataclass
class _Deliveries:
    failed: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def callback(self, sequence: int) -> Any:
        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                self.failed.add(sequence)
                self.errors.append(str(error))

        return delivered


class Relay:
    def __init__(
        self,
        *,
        producer: Producer,
        batch_size: int,
        stop: threading.Event,
        kafka: KafkaWatch | None = None,
        topic_ready: bool = False,
    ) -> None:
        self.producer = producer
        self.batch_size = batch_size
        self.stop = stop
        self.listener = Listener(CHANNEL)
        self.backoff = 0.0
        self.idle = False
        self.kafka = kafka or KafkaWatch(address=settings.KAFKA_BOOTSTRAP_SERVERS)
        self.database = database_outage()
        self.liveness = Liveness()
        self.topic_ready = topic_ready
        self.backlog_counted_at = -BACKLOG_COUNT_EVERY_SECONDS

    def run(self) -> None:
        """Publish until told to stop; wait for new events when there are none. An outage of
        Kafka or the database is waited out."""
        try:
            while not self.stop.is_set():
                self.liveness.beat()
                try:
                    self.producer.poll(0)  # serves the error callback and librdkafka's log lines
                    if (
                        self.kafka.outage.down
                        or self.kafka.reported.is_set()
                        or not self.topic_ready
                    ):
                        self._kafka_check()
                    published = self.publish_batch()
                    self.database.succeeded()
                    if published is None:  # another relay's turn
                        self.stop.wait(0.05)
                    elif published:
                        self._idle_set(False)
                        if published < self.batch_size:
                            # Let the next batch fill a little: a batch's fixed cost (its
                            # statements, a Kafka round trip) would otherwise be paid per event.
                            self.stop.wait(settings.DTS_RELAY_LINGER_SECONDS)
                    elif self.idle:
                        self.listener.wait(settings.DTS_RELAY_IDLE_SECONDS)
                    else:
                        self._idle_set(True)
                        self.listener.wait(SETTLE_SECONDS)
                except Exception as problem:
                    # The database or Kafka is away: wait, and try again with the same events.
                    self._failed(problem)
                    connection.close_if_unusable_or_obsolete()
                    self.idle = False  # said again, on a connection that may be new
                    self._back_off()
        finally:
            self.listener.close()
            self.producer.flush(settings.DTS_RELAY_DELIVERY_TIMEOUT_SECONDS)
            try:
                self._idle_set(False)
            except Exception:  # the database is away: the next relay removes the row
                logger.warning("Could not withdraw the relay's idle mark", exc_info=True)

    def _failed(self, problem: Exception) -> None:
        """Say what went wrong: an outage once (apps.core.outages), anything else each time, a
        bug with its traceback."""
        kafka_away = self.kafka.outage.down or self.kafka.reported.is_set()
        if (isinstance(problem, KafkaException) and kafka_unreachable(problem)) or (
            isinstance(problem, DeliveryFailed) and kafka_away
        ):
            self.kafka.outage.failed(problem)
        elif isinstance(problem, DeliveryFailed):
            logger.warning("Relay batch failed: %s", problem)
        elif database_unreachable(problem):
            self.database.failed(problem)
        else:
            logger.exception("Relay batch failed")

    def publish_batch(self) -> int | None:
        """Publish the oldest unpublished events; how many, or None if another relay has the turn.
        Raises when Kafka did not acknowledge some (those stay unpublished)."""
        if not self._take_turn():
            return None
        try:
            events = list(
                OutboxEvent.objects.filter(published_at__isnull=True).order_by("sequence")[
                    : self.batch_size
                ]
            )
            self._lag_measure(events)
            if not events:
                return 0
            deliveries = self._send(events)
            delivered = _delivered_in_order(events, deliveries.failed)
            OutboxEvent.objects.filter(sequence__in=[e.sequence for e in delivered]).update(
                published_at=timezone.now()
            )
        finally:
            self._end_turn()
        for event in delivered:
            PUBLISHED.labels(type=event.type).inc()
        if deliveries.failed:
            FAILED.inc(len(deliveries.failed))
            raise DeliveryFailed(
                f"Kafka did not acknowledge {len(deliveries.failed)} of {len(events)} events: "
                f"{deliveries.errors[0]}"
            )
        if events:
            self.kafka.outage.succeeded()
        self.backoff = 0.0
        return len(delivered)

    def _kafka_check(self) -> None:
        """Create the events topic if that is still to do, else ask Kafka for its metadata: raises
        KafkaException while Kafka does not answer."""
        timeout = min(KAFKA_CHECK_TIMEOUT_SECONDS, settings.DTS_RELAY_DELIVERY_TIMEOUT_SECONDS)
        self.kafka.reported.clear()
        if self.topic_ready:
            self.producer.list_topics(events_topic(), timeout=timeout)
        else:
            topics_ensure(timeout=timeout)
            self.topic_ready = True
        self.kafka.outage.succeeded()

    def _idle_set(self, idle: bool) -> None:
        """Say whether this relay waits for new events (writers notify only while one does); rows
        of relays whose connection is gone (killed, or reconnected) are removed on the way."""
        if idle == self.idle or connection.vendor != "postgresql":
            self.idle = idle
            return
        with connection.cursor() as cursor:
            if idle:
                cursor.execute(
                    "DELETE FROM events_idlerelay "
                    "WHERE backend_pid NOT IN (SELECT pid FROM pg_stat_activity)"
                )
                cursor.execute(
                    "INSERT INTO events_idlerelay (backend_pid, since) "
                    "VALUES (pg_backend_pid(), now()) ON CONFLICT DO NOTHING"
                )
            else:
                cursor.execute("DELETE FROM events_idlerelay WHERE backend_pid = pg_backend_pid()")
        self.idle = idle

    def _take_turn(self) -> bool:
        if connection.vendor != "postgresql":
            return True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [TURN_LOCK])
            return bool(cursor.fetchone()[0])

    def _end_turn(self) -> None:
        if connection.vendor != "postgresql":
            return
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [TURN_LOCK])
        except DatabaseError:
            # The session's lock goes with it: closed, no relay waits on a lock left held (and
            # the error that ended the batch, if any, is the one raised).
            connection.close()

    def _send(self, events: list[OutboxEvent]) -> _Deliveries:
        deliveries = _Deliveries()
        topic = events_topic()
        for event in events:
            self.producer.produce(
                topic,
                key=str(event.job_id).encode(),
                value=envelope_bytes(event),
                headers={"ce_type": str(event.type), "ce_id": str(event.event_id)},
                on_delivery=deliveries.callback(event.sequence),
            )
            self.producer.poll(0)
        undelivered = self.producer.flush(settings.DTS_RELAY_DELIVERY_TIMEOUT_SECONDS + 5)
        if undelivered:
            # Still queued past their timeout: count them failed; a late delivery is a duplicate.
            deliveries.failed.update(e.sequence for e in events[-undelivered:])
            deliveries.errors.append(f"{undelivered} still queued")
        return deliveries

    def _lag_measure(self, events: list[OutboxEvent]) -> None:
        oldest = events[0].time if events else None
        LAG.set((timezone.now() - oldest).total_seconds() if oldest else 0)
        if len(events) < self.batch_size:
            BACKLOG.set(len(events))  # the batch holds every unpublished event
        elif time.monotonic() - self.backlog_counted_at >= BACKLOG_COUNT_EVERY_SECONDS:
            BACKLOG.set(OutboxEvent.objects.filter(published_at__isnull=True).count())
            self.backlog_counted_at = time.monotonic()

    def _back_off(self) -> None:
        self.backoff = min(max(self.backoff * 2, 0.5), settings.DTS_RELAY_MAX_BACKOFF_SECONDS)
        self.stop.wait(self.backoff)


def _delivered_in_order(events: list[OutboxEvent], failed: set[int]) -> list[OutboxEvent]:
    """The events Kafka acknowledged that may be marked published: for each job, those before its
    first failed one, so that a job's events are never marked out of order."""
    blocked: set[int] = set()
    delivered = []
    for event in events:
        if event.sequence in failed:
            blocked.add(event.job_id)
        elif event.job_id not in blocked:
            delivered.append(event)
    return delivered
