"""Two ``doisoat ingest`` processes on one topic of four partitions: the group splits the work.

How a deployment scales ingest (README, "Scaling ingest out"): more consumers in the one group,
up to the partition count. Real processes, a real PostgreSQL, a real Kafka-protocol broker;
the stream is the crash test's (snapshots and steps of thousands of dossiers, out of order).
Both processes must take a share of the partitions and of the events, and the database must
hold every event exactly once with the dossiers' state as if one process had read it all.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from tests.services.ingest.test_crash import (
    EVENTS_TOTAL,
    OUTCOMES,
    assert_database_holds,
    build_stream,
    group_offsets,
    ingest_env,
    new_topic,
    observer_engine,
)
from tests.support.broker import Broker, end_offsets, produce
from tests.support.processes import ServiceProcess, start_service

pytestmark = pytest.mark.slow

PARTITIONS = 4
LAG = "doisoat_ingest_consumer_lag_messages"


def assigned_partitions(process: ServiceProcess) -> set[int]:
    """The partitions the process reports lag for: those assigned to it and fetched once."""
    return {int(dict(labels)["partition"]) for name, labels in process.metrics() if name == LAG}


def wait_for_split(first: ServiceProcess, second: ServiceProcess) -> tuple[set[int], set[int]]:
    """Until the group has given each process its own share of every partition."""
    deadline = time.monotonic() + 60
    while True:
        for process in (first, second):
            assert process.is_running(), f"ingest died:\n{process.log_tail()}"
        mine, theirs = assigned_partitions(first), assigned_partitions(second)
        if mine and theirs and not mine & theirs and mine | theirs == set(range(PARTITIONS)):
            return mine, theirs
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"no split within 60 s: {mine} / {theirs}\n{first.log_tail()}\n{second.log_tail()}"
            )
        time.sleep(0.2)


def events_counted(process: ServiceProcess) -> dict[str, int]:
    samples = process.metrics()
    return {
        outcome: int(samples.get((EVENTS_TOTAL, frozenset({("outcome", outcome)})), 0))
        for outcome in OUTCOMES
    }


async def test_two_ingest_processes_share_four_partitions_and_apply_each_event_once(
    broker: Broker, pg_database_url: str, tmp_path: Path
) -> None:
    total_events = 20_000
    stream = build_stream(dossiers=2_000, events=total_events, seed=20261206)
    topic = new_topic(broker, partitions=PARTITIONS)
    group_id = f"doisoat-scale-{uuid.uuid4().hex[:8]}"
    env = ingest_env(broker, pg_database_url, topic, group_id)
    engine = observer_engine(pg_database_url)
    try:
        with (
            group_offsets(broker, group_id, topic, PARTITIONS) as offsets,
            start_service("ingest", env=env, log_path=tmp_path / "a.log") as first,
            start_service("ingest", env=env, log_path=tmp_path / "b.log") as second,
        ):
            shares = wait_for_split(first, second)
            produce(broker.bootstrap, topic, stream.messages)
            ends = await end_offsets(broker.bootstrap, topic)
            assert sum(ends.values()) == total_events
            deadline = time.monotonic() + 90
            while offsets.committed() != ends:
                assert time.monotonic() < deadline, f"committed {offsets.committed()} of {ends}"
                for process in (first, second):
                    assert process.is_running(), f"ingest died:\n{process.log_tail()}"
                await asyncio.sleep(0.2)
            counts = [events_counted(first), events_counted(second)]
            per_partition = {partition: ends[partition] for partition in range(PARTITIONS)}
        await assert_database_holds(engine, stream)
    finally:
        await engine.dispose()
    print(f"\nshares {shares}, events by process {counts}, per partition {per_partition}")
    for share, count in zip(shares, counts, strict=True):
        assert sum(count.values()) >= sum(per_partition[p] for p in share)
        assert count["dead_letter"] == 0
    assert sum(count["stored"] + count["stale"] for count in counts) == total_events
