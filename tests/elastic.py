"""Tests of log search run against the real Elasticsearch of `make services`, each in indices and
templates of a prefix of its own, removed at the end (the `es` fixture, tests/conftest.py)."""

import uuid
from collections.abc import Iterator

from elasticsearch import Elasticsearch

from apps.logs.client import elasticsearch_client
from apps.logs.documents import KINDS


def prefix_remove(client: Elasticsearch, prefix: str) -> None:
    client.indices.delete(index=f"{prefix}-*", expand_wildcards="all", ignore_unavailable=True)
    for kind in KINDS:
        client.options(ignore_status=404).indices.delete_index_template(
            name=f"{prefix}-{kind.name}-v*"
        )


def es_for_test(settings) -> Iterator[Elasticsearch]:
    """A client, and this test's index prefix in the settings."""
    settings.DTS_LOG_INDEX_PREFIX = f"test-{uuid.uuid4().hex[:10]}"
    client = elasticsearch_client()
    yield client
    prefix_remove(client, settings.DTS_LOG_INDEX_PREFIX)
    client.close()


def searchable_count(client: Elasticsearch, pattern: str) -> int:
    client.indices.refresh(index=pattern, expand_wildcards="all", ignore_unavailable=True)
    return int(client.count(index=pattern, ignore_unavailable=True)["count"])


def documents(client: Elasticsearch, pattern: str) -> dict[str, dict]:
    """Every document of `pattern` by id (up to 10,000)."""
    client.indices.refresh(index=pattern, ignore_unavailable=True)
    found = client.search(index=pattern, size=10_000, ignore_unavailable=True)
    return {hit["_id"]: hit["_source"] for hit in found["hits"]["hits"]}
