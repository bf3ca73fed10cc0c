"""Hostile and broken input (issue 6, point 5), (b): the real consumer.

A few hundred hypothesis-drawn messages on a fresh topic of the real broker, consumed by
``KafkaIngestor`` into PostgreSQL. Every message ends as an event row or a dead letter (with the
reason the parser gives), and the consumer keeps running, a poison message included."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.config import IngestSettings
from services.ingest.consumer import KafkaIngestor
from shared.clock import fixed_clock
from shared.events import DossierEvent, Rejection, parse_message
from shared.models import DeadLetter, Event
from tests.conftest import (
    TEST_NOW,
)
from tests.factories import BASE_TIME, dossier_code, progress, snapshot
from tests.security.hostile import (
    CONSUMER_MESSAGES,
    FUZZ_SOURCE,
    MAX_MESSAGE_BYTES,
    encode_json,
    fuzzed_envelopes,
    json_values,
    poison,
    rfc3339_moments,
    text_values,
)
from tests.support.broker import Broker, committed_offsets, create_topic, end_offsets, produce

MESSAGE_KINDS = (
    "bytes",
    "json",
    "envelope",
    "envelope",
    "envelope",
    "envelope",
    "truncated",
    "oversized",
    "emitted_at",
    "date",
    "null",
    "clean",
    "clean",
    "clean",
)
_CLEAN_IDS = itertools.count()


@st.composite
def clean_envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with a fresh id, a fuzzed moment and any (NUL-free) free text."""
    code = dossier_code(draw(st.integers(0, 9999)))
    event_id = f"clean-{next(_CLEAN_IDS)}"  # hypothesis repeats drawn ids a lot
    emitted_at = datetime.fromisoformat(draw(rfc3339_moments).replace("t", "T").replace("z", "Z"))
    text = text_values(nul=False)
    if draw(st.booleans()):
        envelope = snapshot(code, event_id=event_id, emitted_at=BASE_TIME)
        for name in ("TenTTHC", "ChuHoSo", "TenLinhVuc"):
            envelope["data"][name] = draw(text)
    else:
        envelope = progress(code, event_id=event_id, emitted_at=BASE_TIME, step_at=BASE_TIME)
        for name in ("NoiDungXuLy", "ChucDanh", "PhongBanXuLy"):
            envelope["data"][name] = draw(text)
    envelope["emitted_at"] = emitted_at.isoformat()
    envelope["source"] = FUZZ_SOURCE
    return envelope


@st.composite
def kafka_messages(draw: st.DrawFn) -> tuple[bytes | None, bytes | None]:
    """A mix: arbitrary bytes and JSON, fuzzed envelopes (the most), truncated or oversized
    envelopes, odd ``emitted_at`` and date texts, null values; keys none, right or wrong."""
    kind = draw(st.sampled_from(MESSAGE_KINDS))
    if kind == "null":
        return draw(st.none() | st.binary(max_size=10)), None
    if kind == "bytes":
        return draw(st.none() | st.binary(max_size=20)), draw(st.binary(max_size=300))
    if kind == "json":
        return None, encode_json(draw(json_values(nul=False)))
    envelope = draw(clean_envelopes() if kind == "clean" else fuzzed_envelopes(nul=False))
    data = envelope.get("data")
    if kind == "oversized" and isinstance(data, dict):
        data["TenLinhVuc"] = "Đ" * draw(st.integers(MAX_MESSAGE_BYTES // 2, MAX_MESSAGE_BYTES))
    elif kind == "emitted_at":
        envelope["emitted_at"] = draw(
            rfc3339_moments.map(lambda text: text.replace("T", " "))
            | st.from_regex(r"\A[0-9T:+-]{10,30}\Z")
            | text_values(nul=False)
        )
    elif kind == "date" and isinstance(data, dict):
        data["NgayHenTra" if "TrangThaiHoSo" in data else "ThoiDiemXuLy"] = draw(
            st.from_regex(r"\A[1-9][0-9]{13}\Z")
        )
    value = encode_json(envelope)
    if kind == "truncated":
        value = value[: draw(st.integers(1, max(len(value) - 1, 1)))]
    code = data.get("MaHoSo") if isinstance(data, dict) else None
    key_kind = draw(st.sampled_from(["none", "own", "own", "other"]))
    if key_kind == "own" and isinstance(code, str):
        key: bytes | None = code.encode("utf-8", "surrogatepass")
    elif key_kind == "other":
        key = draw(st.binary(min_size=1, max_size=30))
    else:
        key = None
    return key, value


def draw_examples(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """``count`` examples of ``strategy``, the same on every run."""
    drawn: list[Any] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example: Any) -> None:
        drawn.append(example)

    collect()
    return drawn


def ingest_settings(
    broker: Broker, topic: str, database_url: str, **overrides: Any
) -> IngestSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "kafka_bootstrap_servers": broker.bootstrap,
        "kafka_topic": topic,
        "kafka_group_id": f"group-{topic}",
        "kafka_batch_max_messages": 50,
        "kafka_poll_timeout_ms": 100,
        "kafka_session_timeout_ms": 2000,
        "kafka_heartbeat_interval_ms": 300,
        "kafka_retry_backoff_seconds": 0.2,
        "kafka_retry_backoff_max_seconds": 1.0,
        "kafka_max_message_bytes": MAX_MESSAGE_BYTES,
        "_env_file": None,
    }
    values.update(overrides)
    return IngestSettings(**values)


def fresh_topic(broker: Broker) -> str:
    name = f"tthc.hoso.hostile.{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, name, 1)
    return name


def batch_failures() -> float:
    return REGISTRY.get_sample_value("doisoat_ingest_batch_failures_total") or 0.0


class ConsumerStuck(AssertionError):
    pass


@contextlib.asynccontextmanager
async def consuming(
    settings_: IngestSettings, engine: AsyncEngine
) -> AsyncIterator[tuple[KafkaIngestor, asyncio.Task[None]]]:
    ingestor = KafkaIngestor(settings_, engine, fixed_clock(TEST_NOW))
    task = asyncio.create_task(ingestor.run())
    try:
        yield ingestor, task
    finally:
        ingestor.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=30)


async def until_all_committed(
    settings_: IngestSettings, task: asyncio.Task[None], *, seconds: float
) -> None:
    """Until the group's offsets reach the topic's end; fail fast on a crash or a failed batch."""
    bootstrap, topic = settings_.kafka_bootstrap_servers or "", settings_.kafka_topic
    failures = batch_failures()
    ends = await end_offsets(bootstrap, topic)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while await committed_offsets(bootstrap, settings_.kafka_group_id, topic) != ends:
        if task.done():
            error = None if task.cancelled() else task.exception()
            raise ConsumerStuck(f"the consumer stopped: {error!r}")
        if batch_failures() > failures:
            raise ConsumerStuck("a batch failed and is being retried from the same offset")
        if loop.time() > deadline:
            raise ConsumerStuck(f"offsets not committed to {ends} within {seconds} s")
        await asyncio.sleep(0.2)


async def rows(engine: AsyncEngine, statement: Any) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.execute(statement)).all())


async def test_fuzzed_messages_all_end_stored_or_dead_lettered(
    broker: Broker, pg_engine: AsyncEngine, pg_database_url: str
) -> None:
    messages = draw_examples(kafka_messages(), CONSUMER_MESSAGES)
    assert len(messages) == CONSUMER_MESSAGES
    expected = [parse_message(value, key, max_bytes=MAX_MESSAGE_BYTES) for key, value in messages]
    accepted_ids = {item.event_id for item in expected if isinstance(item, DossierEvent)}
    rejected = {
        offset: item.reason for offset, item in enumerate(expected) if isinstance(item, Rejection)
    }
    accepted = len(expected) - len(rejected)
    # The draw must exercise both outcomes, and repeated event_ids, to mean anything.
    assert accepted >= 30 and len(rejected) >= 40, (accepted, len(rejected))
    assert len(set(rejected.values())) >= 6, set(rejected.values())

    topic = fresh_topic(broker)
    produce(broker.bootstrap, topic, messages, partition=0)
    settings_ = ingest_settings(broker, topic, pg_database_url)
    async with consuming(settings_, pg_engine) as (ingestor, task):
        await until_all_committed(settings_, task, seconds=60)
        stored = {event_id for (event_id,) in await rows(pg_engine, select(Event.event_id))}
        letters = await rows(
            pg_engine,
            select(DeadLetter.offset, DeadLetter.reason, DeadLetter.payload, DeadLetter.key),
        )
        # Still alive: a good message after all that is stored too.
        good = snapshot(dossier_code(1), event_id="after-the-fuzz", emitted_at=BASE_TIME)
        produce(broker.bootstrap, topic, [(None, orjson.dumps(good))], partition=0)
        await until_all_committed(settings_, task, seconds=30)
        assert not task.done()
        assert await ingestor.ready()

    assert len(stored) + len(letters) == len(messages) - (accepted - len(accepted_ids))
    assert stored == accepted_ids
    assert {offset: reason for offset, reason, _, _ in letters} == rejected
    for offset, _, payload, key in letters:
        assert payload == (messages[offset][1] or b"")
        assert key == messages[offset][0]
    final = {event_id for (event_id,) in await rows(pg_engine, select(Event.event_id))}
    assert final == accepted_ids | {"after-the-fuzz"}


# Regressions: inputs that once stopped the consumer.


@pytest.mark.parametrize(
    "kind",
    [
        "year-one",
        "deep",
        "nul",
        "extreme-emitted-at",
    ],
)
async def test_a_poison_message_does_not_stop_the_consumer(
    broker: Broker, pg_engine: AsyncEngine, pg_database_url: str, kind: str
) -> None:
    """The message ends stored or dead-lettered, and the good one after it is stored."""
    topic = fresh_topic(broker)
    good = snapshot(dossier_code(6), event_id="after-the-poison", emitted_at=BASE_TIME)
    value = json.dumps(poison(kind)).encode()  # json: orjson would refuse to write 300 levels
    produce(broker.bootstrap, topic, [(None, value), (None, orjson.dumps(good))], partition=0)
    settings_ = ingest_settings(broker, topic, pg_database_url, kafka_max_message_bytes=1024 * 1024)
    async with consuming(settings_, pg_engine) as (_, task):
        await until_all_committed(settings_, task, seconds=20)
        assert not task.done()
    stored = {event_id for (event_id,) in await rows(pg_engine, select(Event.event_id))}
    letters = await rows(pg_engine, select(DeadLetter.offset))
    assert "after-the-poison" in stored
    assert len(stored) + len(letters) == 2
