"""The Kafka consumer against a real broker, fed by an independent client (librdkafka)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import REGISTRY
from sqlalchemy import Executable, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.config import IngestSettings
from services.ingest.consumer import KafkaIngestor
from shared.clock import fixed_clock
from shared.models import DeadLetter, Dossier, Event, ProgressStep
from tests.conftest import TEST_NOW
from tests.factories import BASE_TIME, dossier_code, encode, progress, snapshot
from tests.support.broker import Broker, committed_offsets, create_topic, end_offsets, produce
from tests.support.waiting import eventually

Message = tuple[bytes | None, bytes | None]


def settings_for(broker: Broker, topic: str, database_url: str) -> IngestSettings:
    return IngestSettings(
        database_url=database_url,
        kafka_bootstrap_servers=broker.bootstrap,
        kafka_topic=topic,
        kafka_group_id=f"group-{topic}",
        kafka_batch_max_messages=500,
        kafka_poll_timeout_ms=100,
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=300,
        _env_file=None,
    )


@asynccontextmanager
async def running(settings: IngestSettings, engine: AsyncEngine) -> AsyncIterator[KafkaIngestor]:
    ingestor = KafkaIngestor(settings, engine, fixed_clock(TEST_NOW))
    task = asyncio.create_task(ingestor.run())
    try:
        yield ingestor
    finally:
        ingestor.stop()
        await asyncio.wait_for(task, timeout=30)


async def wait_until_committed(settings: IngestSettings) -> None:
    """Until the group's committed offsets reach the end of every partition (60 s at most)."""
    bootstrap, topic = settings.kafka_bootstrap_servers or "", settings.kafka_topic
    ends = await end_offsets(bootstrap, topic)
    async with asyncio.timeout(60):
        while await committed_offsets(bootstrap, settings.kafka_group_id, topic) != ends:
            await asyncio.sleep(0.2)


def new_topic(broker: Broker, partitions: int = 3) -> str:
    name = f"tthc.hoso.events.{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, name, partitions)
    return name


def keyed(envelopes: Iterable[dict[str, Any]]) -> list[Message]:
    return [(e["data"]["MaHoSo"].encode(), encode(e)) for e in envelopes]


def produce_snapshots(broker: Broker, topic: str, prefix: str, count: int) -> None:
    """One snapshot each of ``count`` dossiers, event ids ``{prefix}-{n}``."""
    produce(
        broker.bootstrap,
        topic,
        keyed(
            snapshot(dossier_code(n), event_id=f"{prefix}-{n}", emitted_at=BASE_TIME)
            for n in range(count)
        ),
    )


async def scalar(engine: AsyncEngine, statement: Executable) -> object:
    async with engine.connect() as connection:
        return (await connection.execute(statement)).scalar_one()


async def test_events_from_an_independent_producer_are_stored_once(
    broker: Broker, engine: AsyncEngine, database_url: str
) -> None:
    topic = new_topic(broker)
    envelopes = []
    for number in range(20):
        code = dossier_code(number)
        envelopes.append(snapshot(code, event_id=f"{code}-s1", emitted_at=BASE_TIME, status=4))
        envelopes.append(
            snapshot(
                code, event_id=f"{code}-s2", emitted_at=BASE_TIME + timedelta(days=1), status=10
            )
        )
        envelopes.append(
            progress(code, event_id=f"{code}-p1", emitted_at=BASE_TIME, step_at=BASE_TIME)
        )
    replayed = envelopes[:15]
    produce(broker.bootstrap, topic, keyed(envelopes + replayed))
    settings = settings_for(broker, topic, database_url)
    async with running(settings, engine):
        await wait_until_committed(settings)
    assert await scalar(engine, select(func.count()).select_from(Event)) == 60
    assert await scalar(engine, select(func.count()).select_from(ProgressStep)) == 20
    statuses = await scalar(engine, select(func.count()).where(Dossier.status == 10))
    assert statuses == 20
    assert await scalar(engine, select(func.count()).select_from(DeadLetter)) == 0


def dead_letter_count(reason: str) -> float:
    value = REGISTRY.get_sample_value("doisoat_ingest_dead_letters_total", {"reason": reason})
    return value or 0.0


def _envelope(**changes: object) -> dict[str, Any]:
    envelope = snapshot(dossier_code(1), event_id=f"e-{uuid.uuid4().hex}", emitted_at=BASE_TIME)
    data_changes = changes.pop("data", {})
    envelope.update(changes)
    envelope["data"].update(data_changes)
    return envelope


def _without_ma_ho_so() -> bytes:
    envelope = _envelope()
    del envelope["data"]["MaHoSo"]
    return orjson.dumps(envelope)


BAD_INPUTS: dict[str, tuple[bytes | None, bytes, str]] = {
    "invalid_json": (None, b'{"event_id": "x", ', "invalid_json"),
    "invalid_utf8": (None, b'{"event_id": "\xc3\x28"}', "invalid_utf8"),
    "status_11": (None, orjson.dumps(_envelope(data={"TrangThaiHoSo": 11})), "schema"),
    "date_not_yyyymmddhhmmss": (
        None,
        orjson.dumps(_envelope(data={"NgayHenTra": "28/10/2024"})),
        "schema",
    ),
    "emitted_at_not_rfc3339": (
        None,
        orjson.dumps(_envelope(emitted_at="2024-10-30 09:15")),
        "invalid_emitted_at",
    ),
    "missing_ma_ho_so": (None, _without_ma_ho_so(), "schema"),
    "two_megabytes": (None, b'{"pad": "' + b"x" * (2 * 1024 * 1024) + b'"}', "too_large"),
    "empty": (None, b"", "empty"),
    "key_disagrees_with_ma_ho_so": (b"some-other-code", encode(_envelope()), "key_mismatch"),
}


@pytest.mark.parametrize("key,value,reason", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
async def test_bad_message_becomes_a_dead_letter_and_consumption_goes_on(
    broker: Broker,
    pg_engine: AsyncEngine,
    pg_database_url: str,
    key: bytes | None,
    value: bytes,
    reason: str,
) -> None:
    topic = new_topic(broker, partitions=1)
    good = snapshot(dossier_code(2), event_id="good-after-bad", emitted_at=BASE_TIME)
    produce(broker.bootstrap, topic, [(key, value), *keyed([good])], partition=0)
    before = dead_letter_count(reason)
    settings = settings_for(broker, topic, pg_database_url)
    async with running(settings, pg_engine):
        await wait_until_committed(settings)
    async with pg_engine.connect() as connection:
        letter = (await connection.execute(select(DeadLetter))).one()
        stored = (await connection.execute(select(Event.event_id))).scalars().all()
    assert (letter.topic, letter.partition, letter.offset) == (topic, 0, 0)
    assert letter.reason == reason
    assert letter.payload == value
    assert letter.key == key
    assert stored == ["good-after-bad"]
    assert dead_letter_count(reason) == before + 1


async def test_lag_gauge_is_zero_once_caught_up(
    broker: Broker, pg_engine: AsyncEngine, pg_database_url: str
) -> None:
    topic = new_topic(broker, partitions=2)
    produce_snapshots(broker, topic, "lag", 50)
    settings = settings_for(broker, topic, pg_database_url)

    async def lags() -> list[float | None]:
        return [
            REGISTRY.get_sample_value(
                "doisoat_ingest_consumer_lag_messages", {"topic": topic, "partition": str(p)}
            )
            for p in (0, 1)
        ]

    async with running(settings, pg_engine) as ingestor:
        await wait_until_committed(settings)
        # The gauge is set after each poll: wait for the poll that follows the last commit.
        caught_up = await eventually(lags, lambda seen: seen == [0.0, 0.0], within=30)
        assert await ingestor.ready()
    assert caught_up == [0.0, 0.0]


async def group_members(bootstrap: str, group_id: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_consumer_groups([group_id])
        return sum(len(group[-1]) for group in described.groups)
    finally:
        await admin.close()


async def test_a_consumer_that_joined_early_consumes_as_the_same_member(
    broker: Broker, engine: AsyncEngine, database_url: str
) -> None:
    topic = new_topic(broker, partitions=2)
    produce_snapshots(broker, topic, "early", 30)
    settings = settings_for(broker, topic, database_url)
    ingestor = KafkaIngestor(settings, engine, fixed_clock(TEST_NOW))
    await ingestor.join_early()
    assert await ingestor.ready()
    task = asyncio.create_task(ingestor.run())
    try:
        await wait_until_committed(settings)
        assert await group_members(broker.bootstrap, settings.kafka_group_id) == 1
    finally:
        ingestor.stop()
        await asyncio.wait_for(task, timeout=30)
    assert await scalar(engine, select(func.count()).select_from(Event)) == 30


async def test_joining_early_with_the_broker_away_leaves_the_retries_to_run(
    engine: AsyncEngine, database_url: str
) -> None:
    nobody = Broker()  # a free port nobody listens on: the broker is away
    settings = settings_for(nobody, "tthc.hoso.events.away", database_url)
    ingestor = KafkaIngestor(settings, engine, fixed_clock(TEST_NOW))
    await asyncio.wait_for(ingestor.join_early(), timeout=30)
    assert not await ingestor.ready()
    nobody.cleanup()


async def test_leaving_closes_the_consumer_that_joined_early(
    broker: Broker, engine: AsyncEngine, database_url: str
) -> None:
    settings = settings_for(broker, new_topic(broker, partitions=2), database_url)
    ingestor = KafkaIngestor(settings, engine, fixed_clock(TEST_NOW))
    await ingestor.join_early()
    assert await ingestor.ready()
    await ingestor.leave()
    assert not await ingestor.ready()
