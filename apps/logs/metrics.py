"""The log indexer's Prometheus series (docs/metrics.md)."""

from prometheus_client import Counter, Gauge, Histogram

INDEXED = Counter(
    "dts_logs_indexed", "Documents Elasticsearch accepted (written or found up to date)", ["kind"]
)
REFUSED = Counter(
    "dts_logs_index_failures",
    "Documents Elasticsearch refused on their own (recorded and skipped)",
    ["kind"],
)
BATCH_ERRORS = Counter(
    "dts_logs_index_batch_errors", "Batches tried again: Elasticsearch or PostgreSQL away or busy"
)
LAG = Gauge(
    "dts_logs_indexer_lag_seconds",
    "Age of the oldest event not yet indexed (0 when the indexer has caught up)",
)
BACKLOG = Gauge(
    "dts_logs_indexer_backlog", "Events in Kafka that this indexer's partitions have not read yet"
)
BATCH_SECONDS = Histogram(
    "dts_logs_index_batch_seconds",
    "Reading a batch's lines and runs from PostgreSQL and writing them to Elasticsearch",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
