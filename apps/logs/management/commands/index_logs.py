"""The log indexer process: `manage.py index_logs` copies run logs and runs into Elasticsearch."""

import logging
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError

from apps.core.loop_command import LoopCommand
from apps.events.kafka import consumer_new
from apps.logs.client import elasticsearch_client, elasticsearch_configured
from apps.logs.documents import TemplateConflict
from apps.logs.indexer import Indexer

logger = logging.getLogger(__name__)


class Command(LoopCommand):
    help = "Index run logs and runs into Elasticsearch until stopped (SIGTERM or SIGINT)."
    batch_size_setting = "DTS_INDEXER_BATCH_SIZE"
    metrics_port_setting = "DTS_INDEXER_METRICS_PORT"
    metrics_address_setting = "DTS_INDEXER_METRICS_ADDRESS"

    def handle(self, *args: Any, **options: Any) -> None:
        if not elasticsearch_configured():
            raise CommandError("ELASTICSEARCH_URL is not set: there is nowhere to index to.")
        stop = self.loop_start(options)
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
        logger.warning("Indexer started: %s into Elasticsearch", settings.DTS_EVENTS_TOPIC)
        try:
            indexer.run()
        except TemplateConflict as conflict:
            raise CommandError(str(conflict)) from None
        logger.warning("Indexer stopped")
