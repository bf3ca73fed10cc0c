"""Self-tests of the broker test support against a real tansu process."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer

from .broker import (
    FAST_GROUP_CONSUMER_CONFIG,
    Broker,
    committed_offsets,
    create_topic,
    end_offsets,
    produce,
    topic_partitions,
)

TOTAL = 1_000
BIG_INDEX = 500
BIG_VALUE = bytes(range(256)) * (2 * 1024 * 1024 // 256)  # exactly 2 MiB, non-trivial bytes


@pytest.fixture
def broker() -> Iterator[Broker]:
    with Broker() as b:
        yield b


def _messages() -> Iterator[tuple[bytes | None, bytes | None]]:
    for i in range(TOTAL):
        value = BIG_VALUE if i == BIG_INDEX else f"value-{i}".encode()
        yield f"key-{i}".encode(), value


async def _consume_all(bootstrap: str, topic: str, group_id: str) -> dict[bytes, bytes]:
    """Consume until TOTAL messages arrived, committing explicit offsets per batch."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **FAST_GROUP_CONSUMER_CONFIG,
    )
    await consumer.start()
    seen: dict[bytes, bytes] = {}
    try:
        deadline = time.monotonic() + 60
        while len(seen) < TOTAL and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    assert record.key is not None and record.value is not None
                    seen[record.key] = record.value
                await consumer.commit({tp: records[-1].offset + 1})
    finally:
        await consumer.stop()
    return seen


async def test_produce_consume_commit_and_restart(broker: Broker) -> None:
    topic, group = "selftest", "selftest-group"
    await asyncio.to_thread(create_topic, broker.bootstrap, topic, 3)
    assert await asyncio.to_thread(topic_partitions, broker.bootstrap, topic) == [0, 1, 2]

    sent = await asyncio.to_thread(produce, broker.bootstrap, topic, _messages())
    assert sent == TOTAL
    ends = await end_offsets(broker.bootstrap, topic)
    assert set(ends) == {0, 1, 2} and sum(ends.values()) == TOTAL
    assert await committed_offsets(broker.bootstrap, group, topic) == {0: 0, 1: 0, 2: 0}

    seen = await _consume_all(broker.bootstrap, topic, group)
    assert len(seen) == TOTAL
    assert seen[f"key-{BIG_INDEX}".encode()] == BIG_VALUE
    assert seen[b"key-0"] == b"value-0"
    assert await committed_offsets(broker.bootstrap, group, topic) == ends

    port, old_pid = broker.port, broker.pid
    await asyncio.to_thread(broker.restart)
    assert broker.port == port and broker.pid not in (None, old_pid)
    # Answers again; memory storage starts empty, so the topic is gone.
    assert await asyncio.to_thread(topic_partitions, broker.bootstrap, topic) == []
    await asyncio.to_thread(create_topic, broker.bootstrap, topic, 3)
    assert await asyncio.to_thread(produce, broker.bootstrap, topic, [(None, b"after")]) == 1


def test_stop_refuses_connections_and_cleanup_removes_logs() -> None:
    b = Broker()
    try:
        b.start()
        assert b.log_path.exists()
        b.stop()
        assert not b.is_running()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", b.port), timeout=1).close()
        b.start()
        assert b.is_running()
    finally:
        b.cleanup()
    assert not b.log_dir.exists()


def test_produce_raises_on_delivery_error(broker: Broker) -> None:
    create_topic(broker.bootstrap, "one-partition", 1)
    with pytest.raises(RuntimeError, match="Unknown partition"):
        produce(broker.bootstrap, "one-partition", [(None, b"x")], partition=7, timeout=5)


async def test_end_offsets_sees_whole_batches(broker: Broker) -> None:
    """tansu's ListOffsets undercounts after multi-record batches; end_offsets must not."""
    await asyncio.to_thread(create_topic, broker.bootstrap, "batched", 1)
    await asyncio.to_thread(produce, broker.bootstrap, "batched", [(None, b"v")] * 100)
    assert await end_offsets(broker.bootstrap, "batched") == {0: 100}
    assert await committed_offsets(broker.bootstrap, "nobody", "batched") == {0: 0}
    # Looking at a missing topic must not create it (tansu auto-creates on named metadata).
    assert await end_offsets(broker.bootstrap, "missing") == {}
    assert await asyncio.to_thread(topic_partitions, broker.bootstrap, "missing") == []
