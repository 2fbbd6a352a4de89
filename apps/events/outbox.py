"""Writing events into the outbox, each in the transaction of the change it describes, and
deleting them once published and past their keeping.

The services write them with `events_record` in their transactions; the run's hot path
(apps.runs.services.hotpath) with `event_insert_from_run`, in the same statement as the change, and
announces them itself. With DTS_EVENTS_ENABLED off (`make dev`, which has no Kafka) nothing is
written, but the events are still announced to their subscribers (apps.events.subscribers). The
relay (apps.events.relay) publishes what is written, in apps.events.envelope's CloudEvents form.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.core import ids
from apps.core.db import models_insert
from apps.events.models import EventType, OutboxEvent
from apps.events.subscribers import events_announce

PURGE_BATCH = 10_000

RUN_EVENT_TYPES = {
    "queued": EventType.RUN_QUEUED,
    "running": EventType.RUN_STARTED,
    "retrying": EventType.RUN_RETRYING,
    "cancelling": EventType.RUN_CANCELLING,
    "succeeded": EventType.RUN_SUCCEEDED,
    "failed": EventType.RUN_FAILED,
    "timed_out": EventType.RUN_TIMED_OUT,
    "cancelled": EventType.RUN_CANCELLED,
    "lost": EventType.RUN_LOST,
}


def events_enabled() -> bool:
    return bool(settings.DTS_EVENTS_ENABLED)


def event_new(
    *,
    type: EventType,
    subject: str,
    job_id: int,
    data: dict[str, Any],
    time: datetime | None = None,
) -> OutboxEvent:
    return OutboxEvent(
        event_id=ids.uuid4(),
        type=type,
        subject=subject,
        job_id=job_id,
        time=time or timezone.now(),
        data=data,
    )


def run_event(
    state: str, *, run_id: Any, job_id: int, attempt: int, time: datetime, **details: Any
) -> OutboxEvent:
    """The event of a run's move to `state`; `details` (error, worker, …) join its data."""
    return event_new(
        type=RUN_EVENT_TYPES[state],
        subject=f"runs/{run_id}",
        job_id=job_id,
        time=time,
        data={"run_id": str(run_id), "attempt": attempt, "state": state, **details},
    )


def events_record(events: Iterable[OutboxEvent], *, announce: bool = True) -> None:
    """Write the events; call it inside the transaction of the change they describe. Once that
    commits, their subscribers hear of them (apps.events.subscribers), whether or not events go to
    Kafka; unless `announce` is off (subscribers hear of what they are about otherwise)."""
    events = list(events)
    if events_enabled():
        models_insert(events)
    if announce:
        events_announce(events)


def event_insert_from_run(event: OutboxEvent) -> tuple[str, list[Any]]:
    """An `INSERT … SELECT` of the event whose job id is read from a run row: `{run}` in the
    statement is where that row comes from (apps.runs.services.hotpath fills it in)."""
    table = connection.ops.quote_name(OutboxEvent._meta.db_table)
    sql = (
        f"INSERT INTO {table} (event_id, type, subject, job_id, time, data, published_at) "  # noqa: S608
        "SELECT %s, %s, %s, job_id, %s, %s, NULL FROM {run}"
    )
    params = [
        OutboxEvent._meta.get_field("event_id").get_db_prep_value(event.event_id, connection),
        str(event.type),
        event.subject,
        connection.ops.adapt_datetimefield_value(event.time),
        OutboxEvent._meta.get_field("data").get_db_prep_save(event.data, connection),
    ]
    return sql, params


def events_purge_published(*, now: datetime) -> int:
    """Delete published events older than DTS_EVENTS_KEEP_HOURS, in batches in sequence order (the
    oldest come first); return how many."""
    cutoff = now - timedelta(hours=settings.DTS_EVENTS_KEEP_HOURS)
    old = OutboxEvent.objects.filter(time__lt=cutoff, published_at__isnull=False)
    purged = 0
    while batch := list(old.order_by("sequence").values_list("sequence", flat=True)[:PURGE_BATCH]):
        OutboxEvent.objects.filter(sequence__in=batch).delete()
        purged += len(batch)
    return purged
