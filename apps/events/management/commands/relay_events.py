"""The relay process: `manage.py relay_events` publishes the event outbox to Kafka."""

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.metrics import metrics_serve
from apps.events.kafka import producer_new
from apps.events.relay import KafkaWatch, Relay

logger = logging.getLogger(__name__)

# A batch is held in the producer's local queue at once; far below its 100,000 messages.
MAX_BATCH_SIZE = 10_000


class Command(BaseCommand):
    help = "Publish the event outbox to Kafka until stopped (SIGTERM or SIGINT)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=settings.DTS_RELAY_BATCH_SIZE)
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=settings.DTS_RELAY_METRICS_PORT,
            help="Serve Prometheus metrics on this port; 0 serves none.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not 1 <= options["batch_size"] <= MAX_BATCH_SIZE:
            raise CommandError(f"--batch-size must be between 1 and {MAX_BATCH_SIZE}.")
        if not 0 <= options["metrics_port"] <= 65535:
            raise CommandError("--metrics-port must be between 0 and 65535.")
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        metrics_serve(
            port=options["metrics_port"],
            address=settings.DTS_RELAY_METRICS_ADDRESS,
            setting="--metrics-port (DTS_RELAY_METRICS_PORT)",
        )
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
