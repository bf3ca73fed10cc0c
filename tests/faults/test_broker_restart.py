"""The Kafka broker restarted under a running ``doisoat ingest``: it reconnects by itself.

The test owns a broker of its own (the session broker is shared by other tests). ``doisoat
ingest`` consumes a first stream of 5,000 events to the end; the broker is restarted on the
same port. The test broker keeps everything in memory, so the restart loses topics, messages
and the group's committed offsets, which a real cluster would keep: the topic is created again
and a second, new stream of 5,000 events is produced into it. Without being touched, the same
process must reconnect, rejoin its group, consume the new stream (from the start of the new
topic: no committed offset, ``auto_offset_reset=earliest``) and store it, while everything
committed before the restart stays in the database. Nothing lost, nothing twice.

The new stream is produced only once the consumer has rejoined its group on the new broker.
Until then aiokafka keeps fetching its old assignment at its old positions, which after a
memory wipe point into the middle of the re-created topic: messages produced in that window
were fetched from there and their offsets committed without an error, so the head of each
partition was never read (seen in 2 of 8 runs: about 3,200 of 5,000 events). A real broker
keeps topics and offsets across a restart, so that is an artifact of the test broker.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.models import DeadLetter, Event
from tests.services.ingest.test_crash import (
    Stream,
    assert_database_holds,
    build_stream,
    group_offsets,
    ingest_env,
    observer_engine,
    wait_for_end,
)
from tests.support.broker import Broker, create_topic, end_offsets, produce, topic_partitions
from tests.support.processes import ServiceProcess, start_service

pytestmark = pytest.mark.slow

PARTITIONS = 3
EVENTS_PER_STREAM = 5_000


def renamed(stream: Stream, day: str) -> Stream:
    """The same stream about other dossiers: the date part of every MaHoSo (hence of every
    key, event_id and expectation) becomes ``day``, so two streams never share a dossier."""
    old, new = "-241021-", f"-{day}-"

    def swap(value: str) -> str:
        assert old in value
        return value.replace(old, new)

    return Stream(
        messages=[
            (key.replace(old.encode(), new.encode()), value.replace(old.encode(), new.encode()))
            for key, value in stream.messages
        ],
        event_ids={swap(event_id) for event_id in stream.event_ids},
        step_ids={swap(event_id) for event_id in stream.step_ids},
        status={swap(code): status for code, status in stream.status.items()},
        responsible={swap(code): officer for code, officer in stream.responsible.items()},
    )


def merged(first: Stream, second: Stream) -> Stream:
    assert not first.status.keys() & second.status.keys()
    return Stream(
        messages=first.messages + second.messages,
        event_ids=first.event_ids | second.event_ids,
        step_ids=first.step_ids | second.step_ids,
        status={**first.status, **second.status},
        responsible={**first.responsible, **second.responsible},
    )


def assignments(process: ServiceProcess) -> list[list[int]]:
    """The partitions of every "partitions assigned" line the process logged, in order."""
    found = []
    for line in process.log_text().splitlines():
        if '"partitions assigned"' in line:
            found.append(sorted(json.loads(line)["partitions"]))
    return found


async def wait_for_assignment(process: ServiceProcess, seen: int, partitions: list[int]) -> None:
    """Until the process logs an assignment of ``partitions`` after its first ``seen`` ones."""
    deadline = time.monotonic() + 30
    while partitions not in assignments(process)[seen:]:
        assert process.is_running(), f"ingest died:\n{process.log_tail()}"
        assert time.monotonic() < deadline, f"never rejoined:\n{process.log_tail()}"
        await asyncio.sleep(0.05)


async def _event_ids(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        return list((await connection.execute(select(Event.event_id))).scalars())


async def test_broker_restart_consumer_reconnects_and_keeps_committed_work(
    pg_database_url: str, tmp_path: Path
) -> None:
    before = build_stream(dossiers=500, events=EVENTS_PER_STREAM, seed=20250615)
    after = renamed(build_stream(dossiers=500, events=EVENTS_PER_STREAM, seed=20250616), "241022")
    everything = merged(before, after)
    assert len(everything.event_ids) == 2 * EVENTS_PER_STREAM

    broker = Broker()
    await asyncio.to_thread(broker.start)
    topic = f"tthc.hoso.events.fault.{uuid.uuid4().hex[:8]}"
    group_id = f"doisoat-fault-broker-{uuid.uuid4().hex[:8]}"
    env = {
        **ingest_env(broker, pg_database_url, topic, group_id),
        "DOISOAT_KAFKA_RETRY_BACKOFF_SECONDS": "0.2",
        "DOISOAT_KAFKA_RETRY_BACKOFF_MAX_SECONDS": "1",
    }
    engine = observer_engine(pg_database_url)
    try:
        await asyncio.to_thread(create_topic, broker.bootstrap, topic, PARTITIONS)
        await asyncio.to_thread(produce, broker.bootstrap, topic, before.messages)
        ends_before = await end_offsets(broker.bootstrap, topic)
        assert sum(ends_before.values()) == EVENTS_PER_STREAM
        with start_service(
            "ingest", env=env, ready=True, log_path=tmp_path / "ingest.log"
        ) as ingest:
            with group_offsets(broker, group_id, topic, PARTITIONS) as offsets:
                await asyncio.to_thread(wait_for_end, offsets, ends_before, ingest)
            committed_before = sorted(await _event_ids(engine))
            assert set(committed_before) == before.event_ids

            seen = len(assignments(ingest))
            await asyncio.to_thread(broker.restart)
            restarted_at = time.monotonic()
            # Memory storage: the topic is gone. The consumer's metadata requests may already
            # have made tansu auto-create it (with its default partition count): accept that.
            await asyncio.to_thread(
                create_topic, broker.bootstrap, topic, PARTITIONS, exist_ok=True
            )
            partitions = await asyncio.to_thread(topic_partitions, broker.bootstrap, topic)
            await wait_for_assignment(ingest, seen, partitions)
            rejoined_seconds = time.monotonic() - restarted_at
            await asyncio.to_thread(produce, broker.bootstrap, topic, after.messages)
            ends_after = await end_offsets(broker.bootstrap, topic)
            assert sum(ends_after.values()) == EVENTS_PER_STREAM
            with group_offsets(broker, group_id, topic, len(partitions)) as offsets:
                await asyncio.to_thread(wait_for_end, offsets, ends_after, ingest)
            resumed_seconds = time.monotonic() - restarted_at
            assert ingest.is_running()
            reconnects = len(assignments(ingest))

        async with engine.connect() as connection:
            rows = (await connection.execute(select(func.count()).select_from(Event))).scalar_one()
            distinct = (
                await connection.execute(select(func.count(func.distinct(Event.event_id))))
            ).scalar_one()
            dead = (
                await connection.execute(select(func.count()).select_from(DeadLetter))
            ).scalar_one()
        stored = set(await _event_ids(engine))
        lost = len(everything.event_ids - stored)
        print(
            f"\nbroker restarted after {len(committed_before)} committed events; the consumer "
            f"rejoined {rejoined_seconds:.1f}s after the broker was back ({reconnects} "
            f"assignments, {len(partitions)} partitions after the restart) and had stored the "
            f"new stream {resumed_seconds:.1f}s after it; "
            f"events lost {lost}, duplicates {rows - distinct}, dead letters {dead}"
        )
        assert reconnects >= 2, "the consumer never rejoined its group"
        assert before.event_ids <= stored, "work committed before the restart is gone"
        assert lost == 0
        assert rows == distinct == 2 * EVENTS_PER_STREAM
        assert dead == 0
        await assert_database_holds(engine, everything)
    finally:
        await engine.dispose()
        await asyncio.to_thread(broker.cleanup)
