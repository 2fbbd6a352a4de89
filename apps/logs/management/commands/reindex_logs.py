"""`manage.py reindex_logs`: rebuild the log indices from PostgreSQL (docs/logs.md)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from elastic_transport import TransportError
from elasticsearch import ApiError

from apps.logs.client import elasticsearch_client, elasticsearch_configured
from apps.logs.documents import TemplateConflict
from apps.logs.indexer import ClusterRefused, everything_index, written_record


class Command(BaseCommand):
    help = (
        "Index every run and run log line PostgreSQL holds into Elasticsearch: rebuilds lost or "
        "expired indices. What is indexed already is written again unchanged; the indexer may "
        "run meanwhile."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if not elasticsearch_configured():
            raise CommandError("ELASTICSEARCH_URL is not set: there is nowhere to index to.")
        try:
            written = everything_index(elasticsearch_client())
        except (TemplateConflict, ClusterRefused, ApiError, TransportError) as problem:
            raise CommandError(f"Elasticsearch: {problem}") from None
        written_record(written)
        self.stdout.write(
            f"Indexed {written.indexed['logs']} log lines and {written.indexed['runs']} runs; "
            f"{len(written.refused)} refused (recorded in IndexFailure)."
        )
        if written.refused:
            raise CommandError(f"{len(written.refused)} documents were refused: see IndexFailure.")
