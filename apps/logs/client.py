"""The Elasticsearch client of dts's processes (ELASTICSEARCH_URL)."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from elasticsearch import Elasticsearch
from elasticsearch.serializer import OrjsonSerializer

from apps.core.outages import Outage, outage_for

REQUEST_TIMEOUT_SECONDS = 30.0


def elasticsearch_configured() -> bool:
    return bool(settings.ELASTICSEARCH_URL)


def elasticsearch_client() -> Elasticsearch:
    """A client that tries each request once (its callers decide how to wait and try again),
    writing JSON with orjson: several times faster than the standard library's on bulk bodies."""
    if not elasticsearch_configured():
        raise ImproperlyConfigured("ELASTICSEARCH_URL is not set: log search has no Elasticsearch.")
    return Elasticsearch(
        settings.ELASTICSEARCH_URL,
        request_timeout=REQUEST_TIMEOUT_SECONDS,
        max_retries=0,
        retry_on_timeout=False,
        serializer=OrjsonSerializer(),
    )


def elasticsearch_outage() -> Outage:
    """This process's outage of Elasticsearch ("Elasticsearch at host:port", no credentials)."""
    parts = urlsplit(settings.ELASTICSEARCH_URL)
    return outage_for("Elasticsearch", f"{parts.hostname}:{parts.port or 9200}")
