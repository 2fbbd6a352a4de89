"""All of dts's Kafka configuration: the relay's producer, consumers, and the events topic.

Every client is made by a function here, in the process that uses it (after any fork):
confluent-kafka clients hold threads and sockets that a forked child must not share.
"""

import logging
import socket
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from django.conf import settings

logger = logging.getLogger(__name__)

HOUR_MS = 3_600_000


def events_topic() -> str:
    return str(settings.DTS_EVENTS_TOPIC)


def _common() -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
        "client.id": f"dts-{socket.gethostname()}",
    }


def producer_new() -> Producer:
    """The relay's producer: idempotent, acks from all in-sync replicas, so that each partition's
    order holds through retries; a message not delivered within DTS_RELAY_DELIVERY_TIMEOUT_SECONDS
    is reported failed, and the relay sends it again later."""
    return Producer(
        _common()
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


def consumer_new(*, group_id: str, from_beginning: bool = False) -> Consumer:
    """A consumer of the events topic that commits only what the caller says it has handled."""
    return Consumer(
        _common()
        | {
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest" if from_beginning else "latest",
        }
    )


def topics_ensure() -> None:
    """Create the events topic with its configured partitions and retention if it is missing."""
    topic = NewTopic(
        events_topic(),
        num_partitions=settings.DTS_EVENTS_TOPIC_PARTITIONS,
        replication_factor=settings.DTS_EVENTS_TOPIC_REPLICATION,
        config={"retention.ms": str(settings.DTS_EVENTS_TOPIC_RETENTION_HOURS * HOUR_MS)},
    )
    admin = AdminClient(_common())
    for name, future in admin.create_topics([topic], request_timeout=30).items():
        try:
            future.result(timeout=60)
            logger.info("Created Kafka topic %s", name)
        except KafkaException as problem:
            if problem.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
