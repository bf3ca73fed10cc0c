"""A member's books on its partitions: what it records when partitions arrive, what each lane's
transaction reports, and what it drops when partitions move to another member."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.positions import PartitionPositions
from services.ingest.progress import PartitionReport
from shared import metrics
from shared.models import IngestPartition
from tests.conftest import TEST_NOW

TOPIC = "tthc.hoso.positions"
LAG = "doisoat_ingest_consumer_lag_messages"


class HeldPartitions:
    """The two things the books read of the Kafka consumer: what it holds, how far each goes."""

    def __init__(self, high_water: dict[int, int]) -> None:
        self._high_water = {TopicPartition(TOPIC, p): hw for p, hw in high_water.items()}

    def assignment(self) -> set[TopicPartition]:
        return set(self._high_water)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self._high_water.get(tp)


def books(engine: AsyncEngine) -> PartitionPositions:
    return PartitionPositions(
        engine, lambda: TEST_NOW, member="ingest-a", lane_count=2, report_every_seconds=5
    )


async def test_assigned_partitions_are_recorded_as_not_stored_yet(engine: AsyncEngine) -> None:
    positions = books(engine)
    positions.assigned([TopicPartition(TOPIC, 1), TopicPartition(TOPIC, 0)])

    assert await positions.record_assignment()

    async with engine.connect() as connection:
        rows = await connection.execute(
            select(IngestPartition.partition, IngestPartition.position).order_by(
                IngestPartition.partition
            )
        )
        assert [tuple(row) for row in rows.all()] == [(0, None), (1, None)]
    assert positions.unrecorded == set()


async def test_a_lane_reports_every_partition_of_its_own_and_none_of_the_others(
    engine: AsyncEngine,
) -> None:
    positions = books(engine)
    positions.stored_up_to({TopicPartition(TOPIC, 2): 40})
    newest = TEST_NOW - timedelta(minutes=3)
    consumer = cast(AIOKafkaConsumer, HeldPartitions({0: 100, 1: 70, 2: 50, 3: 9}))

    reports = positions.lane_reports(
        consumer, 0, {TopicPartition(TOPIC, 0): 60}, {TopicPartition(TOPIC, 0): newest}
    )

    assert sorted(reports, key=lambda report: report.partition) == [
        PartitionReport(TOPIC, 0, 60, 100, newest),  # the batch's
        PartitionReport(TOPIC, 2, 40, 50, None),  # stored by an earlier batch of the lane
    ]


async def test_a_revoked_partition_leaves_no_lag_gauge_and_no_stored_position(
    engine: AsyncEngine,
) -> None:
    positions = books(engine)
    moved, kept = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
    positions.stored_up_to({moved: 10, kept: 20})
    for tp in (moved, kept):
        positions.lag_labels.add((TOPIC, str(tp.partition)))
        metrics.INGEST_CONSUMER_LAG.labels(TOPIC, str(tp.partition)).set(5)

    positions.revoked([moved])

    assert REGISTRY.get_sample_value(LAG, {"topic": TOPIC, "partition": "0"}) is None
    assert REGISTRY.get_sample_value(LAG, {"topic": TOPIC, "partition": "1"}) == 5
    assert positions.stored == {kept: 20}
    metrics.INGEST_CONSUMER_LAG.remove(TOPIC, "1")
