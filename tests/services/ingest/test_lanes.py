"""Lanes: batches of different partitions in the database at once, one partition in order."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiokafka import TopicPartition
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest import lanes, service
from services.reconciler.watermark import current_watermark
from shared.models import Dossier, Event
from tests.conftest import TEST_NOW
from tests.factories import BASE_TIME, dossier_code, snapshot
from tests.services.ingest.test_kafka_ingest import (
    keyed,
    new_topic,
    running,
    scalar,
    settings_for,
    wait_until_committed,
)
from tests.support.broker import Broker, committed_offsets, end_offsets, produce
from tests.support.waiting import eventually

TOPIC = "tthc.hoso.events"


def batch_failures() -> float:
    return REGISTRY.get_sample_value("doisoat_ingest_batch_failures_total") or 0.0


@given(
    st.dictionaries(st.integers(0, 11), st.lists(st.integers(), min_size=1), min_size=1),
    st.integers(1, 4),
)
def test_a_batch_is_cut_into_lanes_that_share_no_partition_and_lose_no_message(
    records: dict[int, list[int]], count: int
) -> None:
    batch = {TopicPartition(TOPIC, partition): items for partition, items in records.items()}
    by_lane = lanes.split(batch, count)
    seen = [tp for lane_batch in by_lane.values() for tp in lane_batch]
    assert sorted(seen) == sorted(batch) and len(seen) == len(set(seen))
    for lane, lane_batch in by_lane.items():
        assert all(lanes.lane_of(tp, count) == lane for tp in lane_batch)
        assert all(lane_batch[tp] is batch[tp] for tp in lane_batch)


def test_a_partition_stays_in_its_lane_whatever_else_is_assigned() -> None:
    five, two = TopicPartition(TOPIC, 5), TopicPartition(TOPIC, 2)
    assert lanes.split({five: [1]}, 2) == {1: {five: [1]}}
    assert lanes.split({five: [1], two: [2]}, 2) == {1: {five: [1]}, 0: {two: [2]}}


@dataclass
class Overlap:
    """Wraps ``service.store_pending``: how many batches were in the database at once, and
    whether two at once ever held the same dossier."""

    original: Callable[..., Awaitable[Any]]
    current: list[set[str]] = field(default_factory=list)
    most: int = 0
    shared_dossiers: bool = False

    async def __call__(self, connection: Any, batch: Any, **kwargs: Any) -> Any:
        codes = {event.dossier_code for event in batch.unique.values()}
        self.shared_dossiers |= any(codes & other for other in self.current)
        self.current.append(codes)
        self.most = max(self.most, len(self.current))
        try:
            await asyncio.sleep(0.05)  # long enough for the other lane's batch to start
            return await self.original(connection, batch, **kwargs)
        finally:
            self.current.remove(codes)


@pytest.mark.parametrize("count", [1, 2])
async def test_batches_of_different_lanes_are_in_the_database_at_once(
    broker: Broker,
    pg_engine: AsyncEngine,
    pg_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    count: int,
) -> None:
    topic = new_topic(broker, partitions=4)
    envelopes = [
        snapshot(
            dossier_code(number),
            event_id=f"{number}-{version}",
            emitted_at=BASE_TIME + timedelta(hours=version),
        )
        for number in range(200)
        for version in range(5)
    ]
    produce(broker.bootstrap, topic, keyed(envelopes))
    overlap = Overlap(service.store_pending)
    monkeypatch.setattr(service, "store_pending", overlap)
    settings = settings_for(broker, topic, pg_database_url).model_copy(
        update={"kafka_concurrent_batches": count, "kafka_batch_max_messages": 100}
    )
    async with running(settings, pg_engine):
        await wait_until_committed(settings)
    assert await scalar(pg_engine, select(func.count()).select_from(Event)) == len(envelopes)
    assert overlap.most == count
    assert not overlap.shared_dossiers


def produce_per_partition(broker: Broker, topic: str, *, partitions: int, snapshots: int) -> None:
    """``snapshots`` dossiers in each partition, partition ``p`` holding codes from ``p * 100``."""
    for partition in range(partitions):
        envelopes = [
            snapshot(
                dossier_code(partition * 100 + number),
                event_id=f"{partition}-{number}",
                emitted_at=BASE_TIME,
            )
            for number in range(snapshots)
        ]
        produce(broker.bootstrap, topic, keyed(envelopes), partition=partition)


@dataclass
class PoisonedDossier:
    """Wraps ``service.store_pending``: a batch holding ``code`` fails while ``failing``."""

    original: Callable[..., Awaitable[Any]]
    code: str
    failing: bool = True
    failures: int = 0

    async def __call__(self, connection: Any, batch: Any, **kwargs: Any) -> Any:
        if self.failing and any(e.dossier_code == self.code for e in batch.unique.values()):
            self.failures += 1
            raise RuntimeError("the database refused this batch")
        return await self.original(connection, batch, **kwargs)


async def test_a_failing_batch_makes_only_its_own_lane_wait(
    broker: Broker, pg_engine: AsyncEngine, pg_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = new_topic(broker, partitions=4)  # lane 0: partitions 0 and 2; lane 1: 1 and 3
    produce_per_partition(broker, topic, partitions=4, snapshots=50)
    poisoned = PoisonedDossier(service.store_pending, dossier_code(100))  # partition 1's first
    monkeypatch.setattr(service, "store_pending", poisoned)
    settings = settings_for(broker, topic, pg_database_url).model_copy(
        update={
            "kafka_concurrent_batches": 2,
            "kafka_batch_max_messages": 20,
            "kafka_retry_backoff_seconds": 10.0,  # lane 1 rests 20 s after its first failure
        }
    )
    ends = await end_offsets(broker.bootstrap, topic)
    failures_before = batch_failures()
    async with running(settings, pg_engine):
        async with asyncio.timeout(60):
            while True:
                committed = await committed_offsets(
                    broker.bootstrap, settings.kafka_group_id, topic
                )
                if poisoned.failures and all(committed[p] == ends[p] for p in (0, 2)):
                    break
                await asyncio.sleep(0.1)
        assert poisoned.failures == 1, "lane 0 finished while lane 1 rested, not retried yet"
        assert committed[1] == 0
        assert batch_failures() - failures_before == 1
    poisoned.failing = False
    async with running(settings, pg_engine):
        await wait_until_committed(settings)
    assert await scalar(pg_engine, select(func.count()).select_from(Event)) == 200
    assert await scalar(pg_engine, select(func.count()).select_from(Dossier)) == 200


async def watermark(engine: AsyncEngine) -> datetime | None:
    async with engine.connect() as connection:
        return await current_watermark(
            connection, now=TEST_NOW, kafka_enabled=True, stale_after=timedelta(minutes=5)
        )


async def test_the_watermark_stays_unknown_until_every_lane_has_stored_its_partitions(
    broker: Broker, pg_engine: AsyncEngine, pg_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = new_topic(broker, partitions=2)  # lane 0: partition 0; lane 1: partition 1
    produce_per_partition(broker, topic, partitions=2, snapshots=20)
    released = asyncio.Event()
    original = service.store_pending

    async def lane_1_held_back(connection: Any, batch: Any, **kwargs: Any) -> Any:
        if any(event.dossier_code == dossier_code(100) for event in batch.unique.values()):
            await released.wait()
        return await original(connection, batch, **kwargs)

    monkeypatch.setattr(service, "store_pending", lane_1_held_back)
    settings = settings_for(broker, topic, pg_database_url).model_copy(
        update={"kafka_concurrent_batches": 2}
    )
    ends = await end_offsets(broker.bootstrap, topic)
    async with running(settings, pg_engine):
        async with asyncio.timeout(30):
            while (await committed_offsets(broker.bootstrap, settings.kafka_group_id, topic))[
                0
            ] != ends[0]:
                await asyncio.sleep(0.05)
        while_lane_1_stores = await watermark(pg_engine)
        released.set()
        await wait_until_committed(settings)
        once_both_stored = await eventually(lambda: watermark(pg_engine), lambda mark: mark)
    assert while_lane_1_stores is None
    assert once_both_stored == TEST_NOW
