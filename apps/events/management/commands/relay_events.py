"""The relay process: `manage.py relay_events` publishes the event outbox to Kafka."""

import logging
from typing import Any

from django.conf import settings

from apps.core.loop_command import LoopCommand
from apps.events.kafka import producer_new
from apps.events.relay import KafkaWatch, Relay

logger = logging.getLogger(__name__)


class Command(LoopCommand):
    help = "Publish the event outbox to Kafka until stopped (SIGTERM or SIGINT)."
    batch_size_setting = "DTS_RELAY_BATCH_SIZE"
    metrics_port_setting = "DTS_RELAY_METRICS_PORT"
    metrics_address_setting = "DTS_RELAY_METRICS_ADDRESS"
    # A batch is held in the producer's local queue at once; far below its 100,000 messages.
    max_batch_size = 10_000

    def handle(self, *args: Any, **options: Any) -> None:
        stop = self.loop_start(options)
        # Kafka and the database may be down: the relay starts anyway and waits for them.
        kafka = KafkaWatch(address=settings.KAFKA_BOOTSTRAP_SERVERS)
        relay = Relay(
            producer=producer_new(on_error=kafka.on_error),
            batch_size=options["batch_size"],
            stop=stop,
            kafka=kafka,
        )
        logger.warning("Relay started: publishing the outbox to %s", settings.DTS_EVENTS_TOPIC)
        relay.run()
        logger.warning("Relay stopped")
