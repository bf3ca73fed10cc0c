"""PostgreSQL restarted under a running ``doisoat ingest``: it pauses, retries, resumes.

The database is a throwaway cluster this module starts for itself (never the machine's shared
server, which other tests and people use): a stream of 20,000 events is produced, ``doisoat
ingest`` consumes it, and mid-stream the cluster is stopped, left down for a few seconds and
started again on the same port and data directory. While it is down the process must stay
alive (``/healthz`` 200), say it is not ready (``/readyz`` 503), count failed batches and
commit no offset; once it is back the engine reconnects on its own (``pool_pre_ping``) and the
stream is finished. The database must then hold exactly the produced events: none lost, none
twice, no dead letter.

Two moments are tried, because a failed batch is retried by rewinding its partitions and
"rewind to the committed offset" means something different before a partition's first
commit: once while some partition has no committed offset yet (aiokafka drains the
partitions of a fresh group one after the other, so early in the stream two of three have
none), once after every partition has committed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text

from shared import migrate
from shared.db import create_engine
from shared.models import DeadLetter, Event
from tests.services.ingest.test_crash import (
    assert_database_holds,
    build_stream,
    group_offsets,
    ingest_env,
    new_topic,
    observer_engine,
    wait_for_end,
)
from tests.support import postgres
from tests.support.broker import Broker, end_offsets, produce
from tests.support.processes import ServiceProcess, start_service

pytestmark = pytest.mark.slow

BATCH_FAILURES = "doisoat_ingest_batch_failures_total"
OUTAGE_SECONDS = 3.0
TOTAL_EVENTS = 20_000
PARTITIONS = 3

Committed = dict[int, int]

#: When to take the database away, judged on the group's committed offsets per partition.
MOMENTS: dict[str, Callable[[Committed], bool]] = {
    "before-some-partition-committed": lambda c: sum(c.values()) >= 2_000 and min(c.values()) == 0,
    "after-every-partition-committed": lambda c: min(c.values()) > 0,
}


@pytest.fixture(scope="module")
async def cluster() -> AsyncIterator[postgres.ThrowawayCluster]:
    """A private PostgreSQL cluster that the tests of this module may stop and start."""
    try:
        postgres.find_bin_dir()
    except postgres.PostgresUnavailableError as error:
        pytest.skip(f"a throwaway PostgreSQL cluster needs the server binaries: {error}")
    started = postgres.ThrowawayCluster()
    await asyncio.to_thread(started.start)
    try:
        yield started
    finally:
        await asyncio.to_thread(started.cleanup)


@pytest.fixture
async def cluster_database_url(cluster: postgres.ThrowawayCluster) -> AsyncIterator[str]:
    """A migrated database of its own on the throwaway cluster."""
    await asyncio.to_thread(cluster.start)  # a failed test may have left it stopped
    name = f"doisoat_fault_{uuid.uuid4().hex[:10]}"
    await postgres.create_database(cluster.url, name)
    url = postgres.database_url(cluster.url, name)
    await asyncio.to_thread(migrate.upgrade, url)
    yield url
    await asyncio.to_thread(cluster.start)
    await postgres.drop_database(cluster.url, name)


def _status(process: ServiceProcess, path: str) -> int:
    try:
        return process.get(path, timeout=8.0).status_code
    except httpx.HTTPError as error:
        pytest.fail(f"{path} did not answer while the database was down: {error!r}")


async def test_engine_reconnects_after_a_database_restart(
    cluster: postgres.ThrowawayCluster, cluster_database_url: str
) -> None:
    """The service's engine (``shared.db.create_engine``) survives a restart without an error:
    ``pool_pre_ping`` finds the pooled connection dead and opens a new one."""
    engine = create_engine(cluster_database_url)
    try:
        assert engine.pool._pre_ping, "the PostgreSQL engine must ping pooled connections"
        async with engine.connect() as connection:
            before = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await asyncio.to_thread(cluster.restart, "fast")
        async with engine.connect() as connection:  # the first use after the restart
            after = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert after != before, "a new server session, not the dead pooled one"
    finally:
        await engine.dispose()


@pytest.mark.parametrize("moment", list(MOMENTS))
async def test_database_restart_during_ingest_loses_and_duplicates_nothing(
    broker: Broker,
    cluster: postgres.ThrowawayCluster,
    cluster_database_url: str,
    tmp_path: Path,
    moment: str,
) -> None:
    stream = build_stream(dossiers=2_000, events=TOTAL_EVENTS, seed=20250614)
    topic = new_topic(broker, partitions=PARTITIONS)
    group_id = f"doisoat-fault-db-{uuid.uuid4().hex[:8]}"
    produce(broker.bootstrap, topic, stream.messages)
    ends = await end_offsets(broker.bootstrap, topic)
    assert sum(ends.values()) == TOTAL_EVENTS
    env = {
        **ingest_env(broker, cluster_database_url, topic, group_id),
        "DOISOAT_KAFKA_BATCH_MAX_MESSAGES": "100",
        "DOISOAT_KAFKA_RETRY_BACKOFF_SECONDS": "0.1",
        "DOISOAT_KAFKA_RETRY_BACKOFF_MAX_SECONDS": "1",
    }
    due = MOMENTS[moment]
    log_path = tmp_path / "ingest.log"
    engine = observer_engine(cluster_database_url)
    try:
        with (
            group_offsets(broker, group_id, topic, PARTITIONS) as offsets,
            start_service("ingest", env=env, ready=True, log_path=log_path) as ingest,
        ):
            deadline = time.monotonic() + 30
            while not due(offsets.committed()):
                assert ingest.is_running(), f"ingest died:\n{ingest.log_tail()}"
                assert time.monotonic() < deadline, f"moment never came:\n{ingest.log_tail()}"
                await asyncio.sleep(0.02)

            stopped_at = time.monotonic()
            await asyncio.to_thread(cluster.stop, "fast")
            stop_seconds = time.monotonic() - stopped_at
            await asyncio.sleep(0.5)  # a commit request already on the wire still lands
            at_outage = offsets.committed()
            committed_in_outage = sum(at_outage.values())
            assert committed_in_outage < TOTAL_EVENTS - 2_000, "the outage must hit mid-stream"
            if moment.startswith("before"):
                assert min(at_outage.values()) == 0, f"every partition committed: {at_outage}"
            while time.monotonic() - stopped_at < OUTAGE_SECONDS:
                assert ingest.is_running(), f"ingest died with the database:\n{ingest.log_tail()}"
                assert _status(ingest, "/healthz") == 200
                assert _status(ingest, "/readyz") == 503
                await asyncio.sleep(0.25)
            assert offsets.committed() == at_outage, "offsets moved without a database"
            failures_in_outage = ingest.metric(BATCH_FAILURES)

            await asyncio.to_thread(cluster.start)
            ingest.wait_ready(30)
            failures_after_restart = ingest.metric(BATCH_FAILURES)
            await asyncio.to_thread(wait_for_end, offsets, ends, ingest)
            failures_total = ingest.metric(BATCH_FAILURES)
            log = ingest.log_text()

        async with engine.connect() as connection:
            rows = (await connection.execute(select(func.count()).select_from(Event))).scalar_one()
            distinct = (
                await connection.execute(select(func.count(func.distinct(Event.event_id))))
            ).scalar_one()
            stored_ids = set((await connection.execute(select(Event.event_id))).scalars())
            dead = (
                await connection.execute(select(func.count()).select_from(DeadLetter))
            ).scalar_one()
        lost = len(stream.event_ids - stored_ids)
        print(
            f"\nPostgreSQL down {OUTAGE_SECONDS:.0f}s (stop took {stop_seconds:.2f}s) at "
            f"{committed_in_outage}/{TOTAL_EVENTS} events committed {at_outage}; batch failures "
            f"during the outage {failures_in_outage:.0f}, after it "
            f"{failures_total - failures_after_restart:.0f}; events lost {lost}, duplicates "
            f"{rows - distinct}, dead letters {dead}"
        )
        assert failures_in_outage > 0, f"the outage hit no batch:\n{log[-3000:]}"
        assert "batch failed; its lane retries from the batch's first offsets" in log
        assert failures_total == failures_after_restart, "batches failed once the database was back"
        assert lost == 0, f"{lost} events skipped: a failed batch was not rewound"
        assert rows == distinct
        assert dead == 0
        await assert_database_holds(engine, stream)
    finally:
        await engine.dispose()
