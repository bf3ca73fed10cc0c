"""Every Prometheus metric of doisoat, in one place.

Names carry the ``doisoat_`` prefix, base units and ``_total``/``_seconds`` suffixes; labels
stay low-cardinality (outcome, reason, kind, unit code — never a dossier code or an officer).
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

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
INGEST_WATERMARK_LAG = Gauge(
    "doisoat_ingest_watermark_lag_seconds",
    "now - the ingest watermark (how far behind the stream the database is): 0 when every "
    "partition is read to its high-water mark or Kafka is off, +Inf when unknown (no report "
    "from a partition for the staleness limit, or before the first poll).",
)
INGEST_COMMIT_FAILURES = Counter(
    "doisoat_ingest_offset_commit_failures_total",
    "Offset commits that failed (rebalance); the messages will be redelivered, harmlessly.",
)
INGEST_BATCH_FAILURES = Counter(
    "doisoat_ingest_batch_failures_total",
    "Batches whose database transaction failed and were retried from the committed offset.",
)

FIELD_REPORTS = Counter(
    "doisoat_field_reports_total",
    "Field reports from the one-stop desk, by channel (api, csv, web: the workspace register) "
    "and outcome (accepted, duplicate, conflict, refused).",
    ["channel", "outcome"],
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

DISCREPANCIES_OPEN = Gauge(
    "doisoat_discrepancies_active",
    "Unresolved (open or acknowledged) discrepancies by kind and severity, refreshed each sweep.",
    ["kind", "severity"],
)
DISCREPANCIES_OPENED = Counter(
    "doisoat_discrepancies_opened_total",
    "Discrepancies opened, by kind and severity.",
    ["kind", "severity"],
)
DISCREPANCIES_RESOLVED = Counter(
    "doisoat_discrepancies_resolved_total",
    "Discrepancies resolved automatically because their condition cleared, by kind.",
    ["kind"],
)
RECONCILE_DOSSIERS = Counter(
    "doisoat_reconcile_dossiers_total",
    "Dossiers judged by the reconciler.",
)
RECONCILE_CHUNK_SECONDS = Histogram(
    "doisoat_reconcile_chunk_duration_seconds",
    "Time to judge one chunk of due dossiers (load, rules, writes, commit).",
    buckets=BATCH_BUCKETS,
)
RECONCILE_SWEEP_SECONDS = Histogram(
    "doisoat_reconcile_sweep_duration_seconds",
    "Time of one sweep: every dossier due for judgement at its start, in chunks.",
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
RECONCILE_LAST_SWEEP = Gauge(
    "doisoat_reconcile_last_sweep_timestamp_seconds",
    "Unix time at which the last sweep completed.",
)
KPI_WEEKS_COUNTED = Gauge(
    "doisoat_kpi_weeks_counted_timestamp_seconds",
    "Unix time at which the past weeks' KPI counts the leaders' board reads were last stored.",
)
KPI_WEEKS_REFRESH_SECONDS = Histogram(
    "doisoat_kpi_weeks_refresh_seconds",
    "Time to count and store the past weeks' KPI counts.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
REPORT_TO_DISCREPANCY_SECONDS = Histogram(
    "doisoat_report_to_discrepancy_seconds",
    "Time from a field report being recorded to the discrepancy it caused being opened.",
    buckets=(1, 10, 60, 300, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400),
)

# Notification channels (services/alerts/channels).

SEND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

NOTIFICATION_ATTEMPTS = Counter(
    "doisoat_notifications_attempts_total",
    "Delivery attempts by channel and outcome (sent, retry, fallback_zns, no_zalo, failed).",
    ["channel", "outcome"],
)
NOTIFICATION_SEND_SECONDS = Histogram(
    "doisoat_notification_send_duration_seconds",
    "Time of one delivery attempt, including connection set-up and token refresh.",
    ["channel"],
    buckets=SEND_BUCKETS,
)
ZALO_TOKEN_REFRESHES = Counter(
    "doisoat_zalo_token_refreshes_total",
    "Zalo OA access-token refreshes, by outcome (ok, refused, error).",
    ["outcome"],
)
ZNS_QUOTA_REMAINING = Gauge(
    "doisoat_zalo_zns_quota_remaining_messages",
    "ZNS messages left today, as last reported by Zalo.",
)

# The alerts dispatcher (outbox rows: one alert for one recipient on one channel).

DELIVERY_BUCKETS = (
    1,
    5,
    15,
    30,
    60,
    120,
    300,
    600,
    1800,
    3600,
    7200,
    14400,
    43200,
    86400,
    259200,
)

NOTIFICATIONS_SENT = Counter(
    "doisoat_notifications_sent_total",
    "Outbox rows delivered, by channel.",
    ["channel"],
)
NOTIFICATIONS_FAILED = Counter(
    "doisoat_notifications_failed_total",
    "Outbox rows whose delivery attempt failed, by channel and what follows "
    "(retry: scheduled again with backoff; dead: given up).",
    ["channel", "outcome"],
)
NOTIFICATIONS_DEAD = Counter(
    "doisoat_notifications_dead_total",
    "Outbox rows declared dead (permanent failure, last attempt, channel not configured).",
    ["channel"],
)
NOTIFICATIONS_DEFERRED = Counter(
    "doisoat_notifications_deferred_total",
    "Outbox rows put off without counting an attempt, by channel and reason "
    "(quota: the provider's quota or balance is used up; channel_failing: the channel kept "
    "failing earlier in the same batch).",
    ["channel", "reason"],
)
NOTIFICATIONS_FALLBACK = Counter(
    "doisoat_notifications_fallback_total",
    "Zalo OA rows turned into ZNS rows because the OA cannot reach the officer.",
)
OUTBOX_PENDING = Gauge(
    "doisoat_outbox_pending",
    "Outbox rows still pending (due now or later: quiet hours, backoff, group wait).",
)
OUTBOX_OLDEST_PENDING_AGE = Gauge(
    "doisoat_outbox_oldest_pending_age_seconds",
    "How long the oldest due pending row has been waiting for the dispatcher "
    "(now - its not_before; 0 when nothing is due). Rows held back on purpose "
    "(quiet hours, backoff) are not due, so this stays near 0 unless delivery is stuck.",
)
NOTIFICATION_DELIVERY_SECONDS = Histogram(
    "doisoat_notification_delivery_seconds",
    "Time from an outbox row being written to its delivery, by channel "
    "(includes group wait, quiet hours and retries).",
    ["channel"],
    buckets=DELIVERY_BUCKETS,
)
DISPATCH_BATCH_SECONDS = Histogram(
    "doisoat_dispatch_batch_duration_seconds",
    "Time of one dispatcher pass: claim, render, send and record one batch.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
)

# Operations: what a person on call looks at first.

BUILD_INFO = Gauge(
    "doisoat_build_info",
    "Always 1; the labels say which doisoat and Python this process runs.",
    ["version", "python"],
)
INGEST_NEWEST_EVENT = Gauge(
    "doisoat_ingest_newest_event_timestamp_seconds",
    "emitted_at (Unix time) of the newest event stored from each source system; "
    "time() minus it is how long a source has been silent.",
    ["source"],
)
DATABASE_REACHABLE = Gauge(
    "doisoat_database_reachable",
    "1 when this process reached the database at its last check (every 15 s), else 0.",
)
KPI_RATIO = Gauge(
    "doisoat_kpi_ratio",
    "Unit KPIs of the current month (QĐ 766) as ratios 0..1: on_time, online, digitised, "
    "in_system; refreshed by the reconciler's sweep.",
    ["unit", "kpi"],
)
DISCREPANCIES_ACTIVE_BY_UNIT = Gauge(
    "doisoat_discrepancies_active_by_unit",
    "Unresolved discrepancies per answering unit and kind, refreshed by the sweep.",
    ["unit", "kind"],
)


def record_build_info() -> None:
    """Label the process with its version (called once at start-up)."""
    try:
        release = version("doisoat")
    except PackageNotFoundError:
        release = "unknown"
    BUILD_INFO.labels(release, platform.python_version()).set(1)
