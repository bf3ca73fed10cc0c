"""What a consumer records of its partitions: the position it stored, the high-water mark at
its last poll, the newest ``emitted_at`` consumed — the ingest watermark's raw material."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.progress import PartitionReport, report_partitions
from services.reconciler.watermark import current_watermark
from shared.db import unit_of_work
from shared.models import IngestPartition
from tests.conftest import TEST_NOW

TOPIC = "tthc.hoso.events"
STALE = timedelta(minutes=2)


async def report(engine: AsyncEngine, *reports: PartitionReport, now: datetime = TEST_NOW) -> None:
    async with unit_of_work(engine, "test") as connection:
        await report_partitions(connection, reports, consumer="ingest-a", now=now)


async def stored(engine: AsyncEngine) -> list[tuple[int, int | None, int | None, datetime | None]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(
                IngestPartition.partition,
                IngestPartition.position,
                IngestPartition.high_water,
                IngestPartition.newest_emitted_at,
            ).order_by(IngestPartition.partition)
        )
        return [tuple(row) for row in rows.all()]  # type: ignore[misc]


async def watermark(engine: AsyncEngine, now: datetime = TEST_NOW) -> datetime | None:
    async with engine.connect() as connection:
        return await current_watermark(connection, now=now, kafka_enabled=True, stale_after=STALE)


async def test_the_newest_emitted_at_never_goes_back(engine: AsyncEngine) -> None:
    newer, older = TEST_NOW - timedelta(hours=1), TEST_NOW - timedelta(hours=5)
    await report(engine, PartitionReport(TOPIC, 0, 10, 50, newer))
    await report(engine, PartitionReport(TOPIC, 0, 20, 50, older))  # a late, older message
    await report(engine, PartitionReport(TOPIC, 0, 30, 50, None))  # an idle heartbeat
    assert await stored(engine) == [(0, 30, 50, newer)]


async def test_a_lagging_partition_holds_the_watermark_until_it_is_read_through(
    engine: AsyncEngine,
) -> None:
    behind = TEST_NOW - timedelta(hours=3)
    await report(
        engine, PartitionReport(TOPIC, 0, 50, 50, None), PartitionReport(TOPIC, 1, 7, 90, behind)
    )
    assert await watermark(engine) == behind
    await report(engine, PartitionReport(TOPIC, 1, 90, 90, TEST_NOW - timedelta(minutes=1)))
    assert await watermark(engine) == TEST_NOW


async def test_a_partition_nobody_reports_makes_the_watermark_unknown(engine: AsyncEngine) -> None:
    await report(engine, PartitionReport(TOPIC, 0, 50, 50, None))
    assert await watermark(engine, TEST_NOW + STALE) == TEST_NOW + STALE
    assert await watermark(engine, TEST_NOW + STALE + timedelta(seconds=1)) is None


async def test_without_kafka_nothing_waits(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        delivered = await current_watermark(
            connection, now=TEST_NOW, kafka_enabled=False, stale_after=STALE
        )
    assert delivered is not None and delivered > TEST_NOW + timedelta(days=365 * 100)


async def test_several_consumers_and_a_rebalance_make_one_watermark(engine: AsyncEngine) -> None:
    async def report_as(consumer: str, *reports: PartitionReport, now: datetime) -> None:
        async with unit_of_work(engine, "test") as connection:
            await report_partitions(connection, reports, consumer=consumer, now=now)

    behind = TEST_NOW - timedelta(hours=3)
    await report_as(
        "ingest-a",
        PartitionReport(TOPIC, 0, 50, 50, None),
        PartitionReport(TOPIC, 1, 7, 90, behind),
        now=TEST_NOW,
    )
    await report_as(
        "ingest-b",
        PartitionReport(TOPIC, 2, 40, 40, None),
        PartitionReport(TOPIC, 3, 10, 10, None),
        now=TEST_NOW,
    )
    assert await watermark(engine) == behind  # one member's lagging partition holds everyone

    # A rebalance moves partition 1 to the second consumer, which reads it through.
    later = TEST_NOW + timedelta(minutes=1)
    await report_as(
        "ingest-b",
        PartitionReport(TOPIC, 1, 90, 90, TEST_NOW),
        PartitionReport(TOPIC, 2, 40, 40, None),
        PartitionReport(TOPIC, 3, 10, 10, None),
        now=later,
    )
    await report_as("ingest-a", PartitionReport(TOPIC, 0, 50, 50, None), now=later)
    assert await watermark(engine, later) == later
    async with engine.connect() as connection:
        rows = await connection.execute(select(IngestPartition.partition, IngestPartition.consumer))
        holders = {partition: consumer for partition, consumer in rows.all()}
    assert holders == {0: "ingest-a", 1: "ingest-b", 2: "ingest-b", 3: "ingest-b"}

    # The second consumer dies: the first goes on, but three partitions are reported by nobody.
    gone = later + STALE + timedelta(seconds=1)
    await report_as("ingest-a", PartitionReport(TOPIC, 0, 50, 50, None), now=gone)
    assert await watermark(engine, gone) is None
