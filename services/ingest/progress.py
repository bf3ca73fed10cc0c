"""What each Kafka consumer reports of its partitions, for the ingest watermark (contract §4).

Written in the batch's own transaction (so a reported position is always a stored one) and,
when the consumer is idle, every few seconds in a small transaction of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.db import insert_for
from shared.models import IngestPartition


@dataclass(frozen=True, slots=True)
class PartitionReport:
    """How far this consumer has stored one partition (for the ingest watermark)."""

    topic: str
    partition: int
    position: int | None  # the next offset to store
    high_water: int | None  # at the last poll; None before the partition's first fetch
    newest_emitted_at: datetime | None  # of the newest message stored from it, if any


async def report_partitions(
    connection: AsyncConnection,
    reports: Sequence[PartitionReport],
    *,
    consumer: str,
    now: datetime,
) -> None:
    """Record this consumer's progress per partition; the newest ``emitted_at`` never goes back."""
    if not reports:
        return
    rows = [
        {
            "topic": report.topic,
            "partition": report.partition,
            "consumer": consumer,
            "position": report.position,
            "high_water": report.high_water,
            "newest_emitted_at": report.newest_emitted_at,
            "reported_at": now,
        }
        for report in reports
    ]
    statement = insert_for(connection, IngestPartition)
    stored, incoming = IngestPartition.newest_emitted_at, statement.excluded.newest_emitted_at
    newest = case(
        (incoming.is_(None), stored),
        (stored.is_(None), incoming),
        (incoming > stored, incoming),
        else_=stored,
    )
    await connection.execute(
        statement.on_conflict_do_update(
            index_elements=["topic", "partition"],
            set_={
                "consumer": statement.excluded.consumer,
                "position": statement.excluded.position,
                "high_water": statement.excluded.high_water,
                "newest_emitted_at": newest,
                "reported_at": statement.excluded.reported_at,
            },
        ),
        rows,
    )
