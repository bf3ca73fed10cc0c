"""Settings of the ingest service (Kafka consumption)."""

from __future__ import annotations

from pydantic import Field

from shared.config import BaseDoisoatSettings


class IngestSettings(BaseDoisoatSettings):
    kafka_topic: str = "tthc.hoso.events"
    kafka_group_id: str = "doisoat-ingest"
    kafka_client_id: str = "doisoat-ingest"
    kafka_batch_max_messages: int = Field(default=5000, ge=1, le=100_000)
    # Batches of different partitions in the database at once (services/ingest/lanes.py).
    kafka_concurrent_batches: int = Field(default=2, ge=1, le=16)
    kafka_poll_timeout_ms: int = Field(default=1000, ge=10)
    kafka_max_message_bytes: int = Field(default=1024 * 1024, ge=1024)
    kafka_max_partition_fetch_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    kafka_session_timeout_ms: int = Field(default=10_000, ge=1000)
    kafka_heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    kafka_max_poll_interval_ms: int = Field(default=300_000, ge=10_000)
    kafka_retry_backoff_seconds: float = Field(default=1.0, gt=0)
    kafka_retry_backoff_max_seconds: float = Field(default=30.0, gt=0)
    kafka_report_every_seconds: float = Field(default=10.0, gt=0)
