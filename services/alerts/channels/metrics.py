"""Prometheus metrics of the notification channels.

Kept here until the lead folds them into ``shared/metrics.py``; labels stay low-cardinality
(channel name and outcome only — never a recipient, dossier or notification id).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
