"""Removing indices past their keeping (DTS_LOG_RETENTION_DAYS), from the scheduler's hourly
maintenance (workers.scheduler)."""

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch

from apps.logs.client import elasticsearch_client, elasticsearch_configured
from apps.logs.documents import KINDS, Kind

logger = logging.getLogger(__name__)


def _period_end(kind: Kind, index: str) -> datetime | None:
    """When the period of `index` (a day of lines, a month of runs) ends; None for an index whose
    name is not one of this kind's."""
    try:
        start = datetime.strptime(index.rsplit("-", 1)[1], kind.date_format).replace(tzinfo=UTC)
    except (IndexError, ValueError):
        return None
    if kind.date_format.endswith("%d"):
        return start + timedelta(days=1)
    return (start + timedelta(days=32)).replace(day=1)


def indices_expired(client: Elasticsearch, *, now: datetime) -> list[str]:
    """The indices whose whole period ended more than DTS_LOG_RETENTION_DAYS before `now`."""
    if not settings.DTS_LOG_RETENTION_DAYS:
        return []
    oldest_kept = now - timedelta(days=settings.DTS_LOG_RETENTION_DAYS)
    expired = []
    for kind in KINDS:
        names = client.indices.get(index=kind.search_pattern(), expand_wildcards="all")
        for index in names:
            end = _period_end(kind, index)
            if end is not None and end <= oldest_kept:
                expired.append(index)
    return sorted(expired)


def indices_purge_expired(client: Elasticsearch, *, now: datetime) -> list[str]:
    """Delete the expired indices; return their names."""
    expired = indices_expired(client, now=now)
    for index in expired:
        client.indices.delete(index=index, ignore_unavailable=True)
        logger.info("Deleted the index %s: past DTS_LOG_RETENTION_DAYS", index)
    return expired


def log_indices_purge_expired(*, now: datetime) -> None:
    """The scheduler's hourly step: delete the expired indices, when there is an Elasticsearch.
    Elasticsearch away or refusing is logged, and tried again at the next step."""
    if not elasticsearch_configured():
        return
    client = elasticsearch_client()
    try:
        indices_purge_expired(client, now=now)
    except (ApiError, TransportError) as problem:
        logger.warning("Expired log indices not deleted (%s); trying again in an hour", problem)
    finally:
        client.close()
