"""The ingest watermark (contract §4, "What the system has delivered"): up to when the stream of
dossier events is known to be in the database, so that a desk report is compared with the
system only once the system's side of that moment has arrived.

Each Kafka consumer records, per assigned partition, how far it has stored the partition
(``ingest_partitions``). From those rows the watermark is:

- *now* when every partition was read up to its high-water mark at its last poll;
- while a partition lags, the ``emitted_at`` of the newest message consumed from it (the
  smallest over the lagging partitions);
- unknown (None) before a partition's first poll, when a partition has no report newer than
  the staleness limit (its consumer is gone and nobody took it over yet), or when no consumer
  has reported at all.

With no Kafka configured (HTTP-only ingest) every fact is delivered when its request commits:
nothing waits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconciler.rules import EVERYTHING_DELIVERED
from shared.models import IngestPartition


@dataclass(frozen=True, slots=True)
class PartitionProgress:
    """One partition as its consumer last reported it."""

    topic: str
    partition: int
    position: int | None  # the next offset to store
    high_water: int | None  # at the consumer's last poll; None before the first one
    newest_emitted_at: datetime | None  # of the newest message consumed from it
    reported_at: datetime


def watermark_of(
    partitions: Iterable[PartitionProgress], *, now: datetime, stale_after: timedelta
) -> datetime | None:
    """The watermark over ``partitions`` at ``now`` (None: unknown)."""
    marks: list[datetime] = []
    for progress in partitions:
        if now - progress.reported_at > stale_after:
            return None
        if progress.high_water is None or progress.position is None:
            return None
        if progress.position >= progress.high_water:
            marks.append(now)
        elif progress.newest_emitted_at is None:
            return None
        else:
            marks.append(min(progress.newest_emitted_at, now))
    return min(marks, default=None)


async def current_watermark(
    connection: AsyncConnection, *, now: datetime, kafka_enabled: bool, stale_after: timedelta
) -> datetime | None:
    """The watermark the reconciler judges with (:data:`EVERYTHING_DELIVERED` without Kafka)."""
    if not kafka_enabled:
        return EVERYTHING_DELIVERED
    rows = await connection.execute(
        select(
            IngestPartition.topic,
            IngestPartition.partition,
            IngestPartition.position,
            IngestPartition.high_water,
            IngestPartition.newest_emitted_at,
            IngestPartition.reported_at,
        )
    )
    return watermark_of(
        (PartitionProgress(*row) for row in rows.all()), now=now, stale_after=stale_after
    )


def lag_seconds(watermark: datetime | None, *, now: datetime) -> float:
    """``now − watermark`` for the operators' gauge: +Inf when unknown, 0 when all delivered."""
    if watermark is None:
        return float("inf")
    return max((now - min(watermark, now)).total_seconds(), 0.0)
