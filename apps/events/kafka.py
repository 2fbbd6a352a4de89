"""All of dts's Kafka configuration: the relay's producer, consumers, and the events topic.

Every client is made by a function here, in the process that uses it (after any fork):
confluent-kafka clients hold threads and sockets that a forked child must not share.

librdkafka's own log lines go through Python's logging (logger `apps.events.librdkafka`), where
repeated ones are collapsed: while Kafka is down it logs every failed connect, ~20 a second.
"""

import logging
import socket
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from django.conf import settings

from apps.core.outages import RepeatedLinesFilter

logger = logging.getLogger(__name__)
librdkafka_logger = logging.getLogger("apps.events.librdkafka")
librdkafka_logger.addFilter(RepeatedLinesFilter())

HOUR_MS = 3_600_000
# librdkafka's errors that mean Kafka cannot be reached (an outage, waited out), as opposed to
# refusals such as INVALID_REPLICATION_FACTOR or TOPIC_AUTHORIZATION_FAILED (configuration).
UNREACHABLE_CODES = frozenset(
    {
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
        KafkaError._RESOLVE,
    }
)


def kafka_unreachable(problem: KafkaException | KafkaError) -> bool:
    """Whether a Kafka client error means Kafka cannot be reached."""
    error = problem.args[0] if isinstance(problem, KafkaException) and problem.args else problem
    return isinstance(error, KafkaError) and error.code() in UNREACHABLE_CODES


def events_topic() -> str:
    return str(settings.DTS_EVENTS_TOPIC)


def _common() -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
        "client.id": f"dts-{socket.gethostname()}",
        "logger": librdkafka_logger,
        # A closed idle connection is not news; a refused one is logged (and collapsed).
        "log.connection.close": False,
    }


def producer_new(*, on_error: Callable[[KafkaError], None] | None = None) -> Producer:
    """The relay's producer: idempotent, acks from all in-sync replicas, so that each partition's
    order holds through retries; a message not delivered within DTS_RELAY_DELIVERY_TIMEOUT_SECONDS
    is reported failed, and the relay sends it again later. `on_error` is called (from `poll` and
    `flush`) with librdkafka's client-wide errors, such as all brokers down."""
    return Producer(
        _common()
        | ({"error_cb": on_error} if on_error else {})
        | {
            "enable.idempotence": True,
            "acks": "all",
            "max.in.flight.requests.per.connection": 5,
            "linger.ms": 5,
            "batch.num.messages": 10_000,
            "compression.type": "lz4",
            "message.timeout.ms": int(settings.DTS_RELAY_DELIVERY_TIMEOUT_SECONDS * 1000),
        }
    )


def consumer_new(
    *, group_id: str, from_beginning: bool = False, session_timeout_seconds: float | None = None
) -> Consumer:
    """A consumer of the events topic that commits only what the caller says it has handled.
    `session_timeout_seconds`: how long after a consumer stops heartbeating (killed) its
    partitions go to the group's others (librdkafka's default: 45 s)."""
    session = (
        {}
        if session_timeout_seconds is None
        else {"session.timeout.ms": int(session_timeout_seconds * 1000)}
    )
    return Consumer(
        _common()
        | session
        | {
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest" if from_beginning else "latest",
        }
    )


def topics_ensure(*, timeout: float = 30) -> None:
    """Create the events topic with its configured partitions and retention if it is missing.
    Raises KafkaException if Kafka does not answer within about `timeout` seconds."""
    topic = NewTopic(
        events_topic(),
        num_partitions=settings.DTS_EVENTS_TOPIC_PARTITIONS,
        replication_factor=settings.DTS_EVENTS_TOPIC_REPLICATION,
        config={"retention.ms": str(settings.DTS_EVENTS_TOPIC_RETENTION_HOURS * HOUR_MS)},
    )
    admin = AdminClient(_common())
    for name, future in admin.create_topics([topic], request_timeout=timeout).items():
        try:
            future.result(timeout=timeout + 5)
            logger.info("Created Kafka topic %s", name)
        except KafkaException as problem:
            if problem.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
