"""The log indexer process: `manage.py index_logs` copies run logs and runs into Elasticsearch."""

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.metrics import metrics_serve
from apps.events.kafka import consumer_new
from apps.logs.client import elasticsearch_client, elasticsearch_configured
from apps.logs.documents import TemplateConflict
from apps.logs.indexer import Indexer

logger = logging.getLogger(__name__)

MAX_BATCH_SIZE = 10_000


class Command(BaseCommand):
    help = "Index run logs and runs into Elasticsearch until stopped (SIGTERM or SIGINT)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=settings.DTS_INDEXER_BATCH_SIZE)
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=settings.DTS_INDEXER_METRICS_PORT,
            help="Serve Prometheus metrics on this port; 0 serves none.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not elasticsearch_configured():
            raise CommandError("ELASTICSEARCH_URL is not set: there is nowhere to index to.")
        if not 1 <= options["batch_size"] <= MAX_BATCH_SIZE:
            raise CommandError(f"--batch-size must be between 1 and {MAX_BATCH_SIZE}.")
        if not 0 <= options["metrics_port"] <= 65535:
            raise CommandError("--metrics-port must be between 0 and 65535.")
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        metrics_serve(
            port=options["metrics_port"],
            address=settings.DTS_INDEXER_METRICS_ADDRESS,
            setting="--metrics-port (DTS_INDEXER_METRICS_PORT)",
        )
        indexer = Indexer(
            client=elasticsearch_client(),
            consumer=consumer_new(
                group_id=settings.DTS_INDEXER_GROUP,
                from_beginning=True,
                session_timeout_seconds=settings.DTS_INDEXER_SESSION_TIMEOUT_SECONDS,
            ),
            stop=stop,
            batch_size=options["batch_size"],
        )
        logger.warning("Indexer started: %s into %s", settings.DTS_EVENTS_TOPIC, "Elasticsearch")
        try:
            indexer.run()
        except TemplateConflict as conflict:
            raise CommandError(str(conflict)) from None
        logger.warning("Indexer stopped")
