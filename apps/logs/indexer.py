"""The log indexer (docs/logs.md): follows the events topic, reads from PostgreSQL the log lines
and runs that a batch of events names, writes them to Elasticsearch, and only then commits the
batch's offsets. Document ids and indices are decided by the documents themselves, so a batch
written twice (after a crash or a rebalance) is a no-op; a document Elasticsearch refuses on its
own is recorded (IndexFailure) and skipped; while Elasticsearch or PostgreSQL is away the batch is
tried again, backing off, and the outage is logged once (apps.core.outages)."""

import itertools
import json
import logging
import threading
import time
import uuid
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from django.conf import settings
from django.db import connection, connections
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout
from elasticsearch import Elasticsearch
from elasticsearch.helpers import streaming_bulk

from apps.core.liveness import Liveness
from apps.core.outages import database_outage, database_unreachable
from apps.events.kafka import events_topic
from apps.events.models import EventType
from apps.logs.client import elasticsearch_outage
from apps.logs.documents import LINES, RUNS, TemplateConflict, templates_ensure
from apps.logs.metrics import BACKLOG, BATCH_ERRORS, BATCH_SECONDS, INDEXED, LAG, REFUSED
from apps.logs.models import IndexFailure
from apps.logs.source import RUN_COPIED, LineRange, lines_read, run_changed_at, runs_read
from apps.runs.models import Run, RunLogLine

logger = logging.getLogger(__name__)

RUN_CHANGES = {
    str(kind) for kind in EventType if kind.startswith("dts.run.") and kind != EventType.RUN_LOGGED
}
# Lines read from PostgreSQL and written to Elasticsearch at a time, within a batch.
LINES_PER_READ = 5000
BULK_CHUNK = 1000
# Documents refused on their own keep this much of their text in IndexFailure.
FAILED_DOCUMENT_CHARS = 2000
BACKLOG_EVERY_SECONDS = 5.0


@dataclass
class Batch:
    """What a batch of events asks to index: ranges of log lines and runs that changed."""

    ranges: list[LineRange] = field(default_factory=list)
    run_ids: set[uuid.UUID] = field(default_factory=set)
    oldest: datetime | None = None


def batch_from_events(events: Iterable[dict[str, Any]]) -> Batch:
    """The lines and runs `events` name; other events, and events that do not parse, are left."""
    batch = Batch()
    for event in events:
        kind, data = event.get("type"), event.get("data") or {}
        try:
            if kind == EventType.RUN_LOGGED:
                batch.ranges.append(
                    LineRange(
                        run_id=uuid.UUID(data["run_id"]),
                        first=int(data["first_sequence"]),
                        last=int(data["last_sequence"]),
                    )
                )
            elif kind in RUN_CHANGES:
                batch.run_ids.add(uuid.UUID(data["run_id"]))
            else:
                continue
        except (KeyError, TypeError, ValueError):
            logger.warning("Event %s of type %s names no run: left", event.get("id"), kind)
            continue
        happened = parse_datetime(str(event.get("time", "")))
        if happened is not None and (batch.oldest is None or happened < batch.oldest):
            batch.oldest = happened
    return batch


def line_actions(ranges: list[LineRange]) -> list[dict[str, Any]]:
    """The bulk actions of the lines of `ranges`: their sources are JSON text already, which the
    client sends as it is."""
    prefix = LINES.prefix()
    return [
        {"_op_type": "index", "_index": prefix + day, "_id": document_id, "_source": source}
        for day, document_id, source in lines_read(ranges)
    ]


def run_action(row: dict[str, Any]) -> dict[str, Any]:
    started, finished = row["started_at"], row["finished_at"]
    source = {
        "run": str(row["id"]),
        "job": row["job_id"],
        "job_name": row["job__name"],
        "team": row["job__team_id"],
        "duration_seconds": (finished - started).total_seconds() if started and finished else None,
    } | {name: row[name] for name in RUN_COPIED}
    return {
        "_op_type": "index",
        "_index": RUNS.index_for(row["created_at"]),
        "_id": str(row["id"]),
        # A replica that read the run earlier never writes over a newer state.
        "version": int(run_changed_at(row).timestamp() * 1_000_000),
        "version_type": "external_gte",
        "_source": source,
    }


class ClusterRefused(RuntimeError):
    """Elasticsearch refused documents for reasons of its own (overloaded, shards unavailable,
    read-only): not the documents' fault, so the batch is tried again."""


@dataclass
class Written:
    indexed: Tally[str] = field(default_factory=Tally)
    refused: list[IndexFailure] = field(default_factory=list)


def _kind_of(index: str) -> str:
    return LINES.name if LINES.owns(index) else RUNS.name


def actions_write(client: Elasticsearch, actions: list[dict[str, Any]], written: Written) -> None:
    """Write `actions` with the bulk helper; count what was accepted, keep what was refused in
    `written`. Raises ClusterRefused (or the transport's error) when the batch must be tried
    again."""
    if not actions:
        return
    by_id = {(action["_index"], action["_id"]): action for action in actions}
    results = streaming_bulk(
        client,
        actions,
        chunk_size=BULK_CHUNK,
        raise_on_error=False,
        raise_on_exception=True,
        # 429 (too many requests) is retried by the helper, backing off.
        max_retries=3,
        initial_backoff=1,
    )
    now = timezone.now()
    for ok, item in results:
        result = next(iter(item.values()))
        kind = _kind_of(result["_index"])
        status = int(result.get("status", 0))
        # 409 on a run: a newer state of it is there already.
        if ok or status == 409:
            written.indexed[kind] += 1
        elif status == 429 or status >= 500:
            raise ClusterRefused(f"Elasticsearch refused a document ({status}): {result['error']}")
        else:
            source = by_id[(result["_index"], result["_id"])]["_source"]
            if not isinstance(source, str):
                source = json.dumps(source, default=str)
            written.refused.append(
                IndexFailure(
                    index=result["_index"],
                    document_id=result["_id"],
                    status=status,
                    reason=json.dumps(result.get("error"))[:4000],
                    document=source[:FAILED_DOCUMENT_CHARS],
                    failed_at=now,
                )
            )


def _range_groups(ranges: list[LineRange]) -> Iterator[list[LineRange]]:
    """The ranges in groups of about LINES_PER_READ lines."""
    group: list[LineRange] = []
    lines = 0
    for one in ranges:
        group.append(one)
        lines += one.last - one.first + 1
        if lines >= LINES_PER_READ:
            yield group
            group, lines = [], 0
    if group:
        yield group


def _line_actions_ahead(groups: list[list[LineRange]]) -> Iterator[list[dict[str, Any]]]:
    """The actions of each group of lines. While one group is written to Elasticsearch the next is
    read from PostgreSQL, in a thread of its own (with a connection of its own, closed at the end:
    it sees what is committed, as the indexer, which runs in no transaction, does): 0.77x the
    bulk helper's rate without, 0.89x with (bench/logs.py). The first group is read here: it has
    nothing to overlap."""
    if not groups:
        return
    yield line_actions(groups[0])
    if len(groups) == 1:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dts-indexer-read") as reader:
        try:
            ahead = reader.submit(line_actions, groups[1])
            for following in groups[2:]:
                actions = ahead.result()
                ahead = reader.submit(line_actions, following)
                yield actions
            yield ahead.result()
        finally:
            reader.submit(connections.close_all).result()


def batch_index(
    client: Elasticsearch, batch: Batch, *, progress: Callable[[], None] = lambda: None
) -> Written:
    """Index what `batch` names: all of it, or raise (nothing is counted then). `progress` is
    called after each group of lines (the indexer's sign of life during a long batch)."""
    written = Written()
    for actions in _line_actions_ahead(list(_range_groups(batch.ranges))):
        actions_write(client, actions, written)
        progress()
    if batch.run_ids:
        runs = runs_read(sorted(batch.run_ids))
        actions_write(client, [run_action(row) for row in runs], written)
    if written.refused:
        IndexFailure.objects.bulk_create(
            written.refused,
            update_conflicts=True,
            unique_fields=["index", "document_id"],
            update_fields=["status", "reason", "document", "failed_at"],
        )
    return written


def written_record(written: Written) -> None:
    for kind, count in written.indexed.items():
        INDEXED.labels(kind).inc(count)
    for failure in written.refused:
        REFUSED.labels(_kind_of(failure.index)).inc()
        logger.warning(
            "Elasticsearch refused %s/%s (%s), skipped: %s",
            failure.index,
            failure.document_id,
            failure.status,
            failure.reason[:500],
        )


def elasticsearch_unreachable(problem: BaseException) -> bool:
    return isinstance(problem, TransportConnectionError | ConnectionTimeout | ClusterRefused)


class Indexer:
    def __init__(
        self,
        *,
        client: Elasticsearch,
        consumer: Consumer,
        stop: threading.Event,
        batch_size: int = 0,
    ) -> None:
        self.client = client
        self.consumer = consumer
        self.stop = stop
        self.batch_size = batch_size or settings.DTS_INDEXER_BATCH_SIZE
        self.elasticsearch = elasticsearch_outage()
        self.database = database_outage()
        self.liveness = Liveness()
        self.backlog_measured_at = -BACKLOG_EVERY_SECONDS

    def run(self) -> None:
        """Index until told to stop. Its templates are put first (waiting for Elasticsearch)."""
        if not self._until_done(lambda: templates_ensure(self.client)):
            return
        self.consumer.subscribe([events_topic()])
        try:
            while not self.stop.is_set():
                self.liveness.beat()
                messages = self._batch_read()
                self._backlog_measure()
                if not messages:
                    LAG.set(0)
                    continue
                batch = batch_from_events(self._events(messages))
                if batch.oldest is not None:
                    LAG.set(max(0.0, (timezone.now() - batch.oldest).total_seconds()))
                written = self._indexed(batch)
                if written is None:
                    return  # stopped: the batch is read again by the next indexer
                written_record(written)
                try:
                    self.consumer.commit(asynchronous=False)
                except KafkaException as problem:
                    # A rebalance took the partitions: their new reader indexes it again.
                    logger.warning("Offsets not committed (%s): the batch is read again", problem)
        finally:
            self.consumer.close()

    def _indexed(self, batch: Batch) -> Written | None:
        """`batch` indexed, outages waited out; None when the indexer was stopped first."""
        outcome: list[Written] = []

        def index() -> None:
            with BATCH_SECONDS.time():
                outcome.append(batch_index(self.client, batch, progress=self.liveness.beat))

        return outcome[0] if self._until_done(index) else None

    def _batch_read(self) -> list[Any]:
        """Up to a batch of messages: waits a second for the first, not for the others (a batch
        is what has arrived), so a line is indexed as soon as it is published."""
        first = self.consumer.poll(1.0)
        if first is None:
            return []
        if self.batch_size == 1:
            return [first]
        return [first, *self.consumer.consume(self.batch_size - 1, timeout=0)]

    def _events(self, messages: list[Any]) -> Iterator[dict[str, Any]]:
        for message in messages:
            if message.error():
                logger.warning("Kafka: %s", message.error())
                continue
            try:
                yield json.loads(message.value() or b"{}")
            except ValueError:
                logger.warning("An event that is not JSON at offset %s: left", message.offset())

    def _until_done(self, step: Callable[[], None]) -> bool:
        """Run `step` until it succeeds (True) or the indexer is stopped (False), waiting out the
        outages of Elasticsearch and PostgreSQL."""
        backoff = 0.0
        while not self.stop.is_set():
            self.liveness.beat()
            try:
                step()
            except TemplateConflict:
                raise  # an operator's decision, not an outage
            except Exception as problem:
                BATCH_ERRORS.inc()
                if elasticsearch_unreachable(problem):
                    self.elasticsearch.failed(problem)
                elif database_unreachable(problem):
                    self.database.failed(problem)
                    connection.close_if_unusable_or_obsolete()
                else:
                    logger.exception("Indexing a batch failed; trying again")
                backoff = min(max(backoff * 2, 0.5), settings.DTS_INDEXER_MAX_BACKOFF_SECONDS)
                self.stop.wait(backoff)
                continue
            self.elasticsearch.succeeded()
            self.database.succeeded()
            return True
        return False

    def _backlog_measure(self) -> None:
        """Events of this indexer's partitions not read yet, from the offsets the consumer knows."""
        if time.monotonic() - self.backlog_measured_at < BACKLOG_EVERY_SECONDS:
            return
        self.backlog_measured_at = time.monotonic()
        try:
            waiting = 0
            for partition in self.consumer.position(self.consumer.assignment()):
                low, high = self.consumer.get_watermark_offsets(
                    TopicPartition(partition.topic, partition.partition), cached=True
                )
                if high >= 0:
                    waiting += high - (partition.offset if partition.offset >= 0 else low)
            BACKLOG.set(max(0, waiting))
        except KafkaException:
            pass  # Kafka away: the last figure stays


def everything_index(client: Elasticsearch, *, page: int = LINES_PER_READ) -> Written:
    """Index every run and every log line PostgreSQL holds (the rebuild: docs/logs.md), page by
    page in the order of the keys; what is indexed already is written again, a no-op."""
    templates_ensure(client)
    written = Written()
    after: tuple[uuid.UUID, int] | None = None
    while True:
        keys = RunLogLine.objects.order_by("run_id", "sequence")
        if after is not None:
            keys = keys.filter(Q(run_id__gt=after[0]) | Q(run_id=after[0], sequence__gt=after[1]))
        rows = list(keys.values_list("run_id", "sequence")[:page])
        if not rows:
            break
        ranges: dict[uuid.UUID, LineRange] = {}
        for run_id, sequence in rows:
            first = ranges[run_id].first if run_id in ranges else sequence
            ranges[run_id] = LineRange(run_id=run_id, first=first, last=sequence)
        batch_written = batch_index(client, Batch(ranges=list(ranges.values())))
        written_add(written, batch_written)
        after = rows[-1]
    run_ids = Run.objects.order_by("id").values_list("id", flat=True).iterator(chunk_size=page)
    while chunk := list(itertools.islice(run_ids, page)):
        written_add(written, batch_index(client, Batch(run_ids=set(chunk))))
    return written


def written_add(total: Written, more: Written) -> None:
    total.indexed.update(more.indexed)
    total.refused.extend(more.refused)
