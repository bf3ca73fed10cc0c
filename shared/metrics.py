"""Every Prometheus metric of doisoat, in one place.

Names carry the ``doisoat_`` prefix, base units and ``_total``/``_seconds`` suffixes; labels
stay low-cardinality (outcome, reason, kind, unit code — never a dossier code or an officer).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

INGEST_EVENTS = Counter(
    "doisoat_ingest_events_total",
    "Dossier events handled by ingest, by outcome "
    "(stored, duplicate, stale, dead_letter from Kafka, refused over HTTP).",
    ["outcome"],
)
INGEST_DEAD_LETTERS = Counter(
    "doisoat_ingest_dead_letters_total",
    "Kafka messages kept as dead letters, by reason.",
    ["reason"],
)
INGEST_BATCH_SECONDS = Histogram(
    "doisoat_ingest_batch_duration_seconds",
    "Time to store one batch of events (parse, validate, database transaction).",
    ["transport"],
    buckets=BATCH_BUCKETS,
)
INGEST_BATCH_EVENTS = Histogram(
    "doisoat_ingest_batch_size_events",
    "Number of messages in one ingested batch.",
    ["transport"],
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
)
INGEST_CONSUMER_LAG = Gauge(
    "doisoat_ingest_consumer_lag_messages",
    "Messages in the partition not yet consumed by this process (highwater - position).",
    ["topic", "partition"],
)
INGEST_COMMIT_FAILURES = Counter(
    "doisoat_ingest_offset_commit_failures_total",
    "Offset commits that failed (rebalance); the messages will be redelivered, harmlessly.",
)
INGEST_BATCH_FAILURES = Counter(
    "doisoat_ingest_batch_failures_total",
    "Batches whose database transaction failed and were retried from the committed offset.",
)

DB_TRANSACTIONS = Counter(
    "doisoat_db_transactions_total",
    "Units of work, by name and outcome (commit, rollback).",
    ["name", "outcome"],
)
DB_TRANSACTION_SECONDS = Histogram(
    "doisoat_db_transaction_duration_seconds",
    "Duration of one unit of work, by name.",
    ["name"],
    buckets=BATCH_BUCKETS,
)

HTTP_REQUESTS = Counter(
    "doisoat_http_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "doisoat_http_request_duration_seconds",
    "HTTP request latency, by route template.",
    ["route"],
    buckets=BATCH_BUCKETS,
)
