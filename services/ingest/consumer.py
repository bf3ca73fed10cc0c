"""The Kafka adapter of ingest: batches in, one transaction per batch, offsets out after commit.

Delivery is at least once; effects are idempotent, so a redelivered message is a harmless
duplicate. The pitfalls this avoids (see aiokafka #929, #1046, #848):
- offsets are committed explicitly (``{tp: last + 1}``) and only after the database commit;
- a failed batch seeks back to its own first offsets (the first not stored) before its lane
  retries, or it would be skipped;
- a rebalance waits for the batches in flight (the listener takes their locks), and a commit
  that fails because of one only means redelivery;
- batches are bounded so processing stays far below ``max_poll_interval_ms``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest import lanes, progress, service
from services.ingest.config import IngestSettings
from services.ingest.positions import PartitionPositions
from services.ingest.prepared import Prepared, prepare
from services.ingest.rebalance import CommitBeforeRevoke
from shared import metrics
from shared.clock import Clock
from shared.db import unit_of_work

log = logging.getLogger("doisoat.ingest")

# While every lane with messages has a batch in flight: how often to look for messages of the
# idle lanes (a fetch that does not wait: from what the consumer has prefetched).
_IDLE_LANE_POLL_SECONDS = 0.02


class KafkaIngestor:
    """Consumes ``DOISOAT_KAFKA_TOPIC`` in a consumer group until :meth:`stop` is called."""

    name = "ingest"

    def __init__(
        self,
        settings: IngestSettings,
        engine: AsyncEngine,
        clock: Clock,
        *,
        on_committed: Callable[[], None] | None = None,
    ) -> None:
        self._settings = settings
        self._on_committed = on_committed
        self._engine = engine
        self._clock = clock
        self._stopping = asyncio.Event()
        self.lanes = settings.kafka_concurrent_batches
        # Held by a lane's batch from its transaction to its offset commit.
        self.lane_locks = [asyncio.Lock() for _ in range(self.lanes)]
        self.positions = PartitionPositions(
            engine,
            clock,
            member=f"{settings.kafka_client_id}@{socket.gethostname()}:{os.getpid()}",
            lane_count=self.lanes,
            report_every_seconds=settings.kafka_report_every_seconds,
        )
        self._consumer: AIOKafkaConsumer | None = None

    def _build_consumer(self) -> AIOKafkaConsumer:
        settings = self._settings
        return AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=settings.kafka_group_id,
            client_id=settings.kafka_client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=settings.kafka_max_partition_fetch_bytes,
            fetch_max_bytes=max(settings.kafka_max_partition_fetch_bytes * 4, 52_428_800),
            session_timeout_ms=settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
            max_poll_interval_ms=settings.kafka_max_poll_interval_ms,
        )

    def stop(self) -> None:
        self._stopping.set()

    async def ready(self) -> bool:
        """Readiness: the broker answers a metadata request."""
        consumer = self._consumer
        if consumer is None:
            return False
        try:
            topics = await asyncio.wait_for(consumer.topics(), timeout=3)
        except Exception:
            return False
        return self._settings.kafka_topic in topics

    async def join_early(self) -> None:
        """Start joining the consumer group before the rest of the process is built.

        A broker holds a new group's first join to let more members arrive (Apache Kafka's
        ``group.initial.rebalance.delay.ms``, 3 s by default; tansu half the session timeout):
        the process imports and builds its web app meanwhile instead of before. A broker away
        is left to :meth:`run`, which retries with its back-off.
        """
        try:
            await self._join()
        except KafkaError as error:
            log.warning("kafka unavailable at start-up", extra={"error": repr(error)})

    async def leave(self) -> None:
        """Close this process's member: when :meth:`run` ends, or when the process could not
        build its app after :meth:`join_early`."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()

    async def _join(self) -> AIOKafkaConsumer:
        """The member this process consumes with: started, subscribed, its join under way."""
        if self._consumer is not None:
            return self._consumer
        consumer = self._build_consumer()
        try:
            await consumer.start()
            consumer.subscribe(
                [self._settings.kafka_topic],
                listener=CommitBeforeRevoke(self.lane_locks, self.positions),
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await consumer.stop()
            raise
        self._consumer = consumer
        return consumer

    async def run(self) -> None:
        """Consume until stopped; reconnect with backoff when the broker is away."""
        delay = self._settings.kafka_retry_backoff_seconds
        while not self._stopping.is_set():
            try:
                consumer = await self._join()
                log.info("consuming", extra={"topic": self._settings.kafka_topic})
                await self._consume(consumer)
                delay = self._settings.kafka_retry_backoff_seconds
            except KafkaError as error:
                log.warning("kafka unavailable, retrying", extra={"error": repr(error)})
            finally:
                await self.leave()
            if not self._stopping.is_set():
                await self._sleep(delay)
                delay = min(delay * 2, self._settings.kafka_retry_backoff_max_seconds)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        """Keep a batch of every lane in the database, fetching and parsing the next one of a
        lane as soon as its last one is stored.

        Each lane (:mod:`.lanes`) has at most one batch in flight, so its partitions are
        stored and their offsets committed strictly in order, while the other lanes' batches
        are in the database at the same time. A lane's batch is fetched from its own
        partitions only: a fetch over all of them mostly returns one partition's backlog, and
        the lanes would take turns. When a batch fails, its partitions are rewound to its first
        offset and its lane rests for a back-off; the other lanes go on meanwhile.
        """
        settings = self._settings
        in_flight: dict[int, tuple[asyncio.Task[bool], Prepared]] = {}
        failures = [0] * self.lanes  # consecutive, per lane
        resting = [0.0] * self.lanes  # per lane: not fetched before this monotonic time
        try:
            while not self._stopping.is_set():
                if not await self.positions.record_assignment():
                    await self._sleep(settings.kafka_retry_backoff_seconds)
                    continue
                now = time.monotonic()
                waiting = {lane for lane in range(self.lanes) if resting[lane] > now}
                busy = waiting | set(in_flight)
                if busy:
                    ready = [
                        tp
                        for tp in consumer.assignment()
                        if lanes.lane_of(tp, self.lanes) not in busy
                    ]
                    batch = (
                        await consumer.getmany(
                            *ready, timeout_ms=0, max_records=settings.kafka_batch_max_messages
                        )
                        if ready
                        else {}
                    )
                else:
                    batch = await consumer.getmany(
                        timeout_ms=settings.kafka_poll_timeout_ms,
                        max_records=settings.kafka_batch_max_messages,
                    )
                for lane, records in lanes.split(batch, self.lanes).items():
                    lane_batch = await prepare(
                        records,
                        postgresql=self._engine.dialect.name == "postgresql",
                        max_bytes=settings.kafka_max_message_bytes,
                    )
                    task = asyncio.create_task(self._store(consumer, lane_batch, lane))
                    in_flight[lane] = (task, lane_batch)
                if busy and not batch:
                    await self._wait_a_little([task for task, _ in in_flight.values()])
                for lane, (task, lane_batch) in list(in_flight.items()):
                    if not task.done():
                        continue
                    del in_flight[lane]
                    if task.result():
                        failures[lane] = 0
                    else:
                        failures[lane] += 1
                        resting[lane] = time.monotonic() + self._rewind(
                            consumer, lane_batch, failures[lane]
                        )
                await self.positions.update_lag(consumer)
                await self.positions.report_idle(consumer, busy=set(in_flight))
        finally:
            if in_flight:
                await asyncio.shield(asyncio.gather(*(task for task, _ in in_flight.values())))

    async def _wait_a_little(self, tasks: list[asyncio.Task[bool]]) -> None:
        """Nothing fetched while lanes are busy or resting: wait for a batch to end, briefly."""
        if tasks:
            await asyncio.wait(
                tasks, timeout=_IDLE_LANE_POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
        else:
            await self._sleep(_IDLE_LANE_POLL_SECONDS)

    def _rewind(self, consumer: AIOKafkaConsumer, failed: Prepared, failures: int) -> float:
        """After a failed batch: rewind its partitions to its first offsets (the first not
        stored: nothing of a lane is fetched while its batch is in flight); the back-off its
        lane then rests, in seconds.

        Not ``seek_to_committed``: aiokafka skips the seek when a partition has no committed
        offset yet (or 0), so a batch failing before its partition's first commit was skipped
        and its events lost once a later batch committed past it.
        """
        for tp, offset in failed.first.items():
            with contextlib.suppress(IllegalStateError):
                consumer.seek(tp, offset)
        settings = self._settings
        return min(
            settings.kafka_retry_backoff_seconds * 2.0 ** min(failures, 10),
            settings.kafka_retry_backoff_max_seconds,
        )

    async def _store(self, consumer: AIOKafkaConsumer, prepared: Prepared, lane: int) -> bool:
        """One transaction for the batch, then its offsets; False when the batch must be redone."""
        async with self.lane_locks[lane]:
            now = self._clock()
            try:
                async with unit_of_work(self._engine, "ingest_batch") as connection:
                    result = await service.store_pending(connection, prepared.batch, now=now)
                    await service.store_dead_letters(connection, prepared.dead, now=now)
                    await progress.report_partitions(
                        connection,
                        self.positions.lane_reports(
                            consumer, lane, prepared.offsets, prepared.newest
                        ),
                        consumer=self.positions.member,
                        now=now,
                    )
            except Exception:
                metrics.INGEST_BATCH_FAILURES.inc()
                log.exception("batch failed; its lane retries from the batch's first offsets")
                return False
            self.positions.stored_up_to(prepared.offsets)
            if self._on_committed is not None and result.touched_dossiers:
                self._on_committed()
            try:
                await consumer.commit(prepared.offsets)
            except (CommitFailedError, IllegalStateError) as error:
                metrics.INGEST_COMMIT_FAILURES.inc()
                log.warning(
                    "offset commit failed; batch will be redelivered",
                    extra={"error": str(error)},
                )
        self._count(result, prepared)
        return True

    def _count(self, result: service.BatchResult, prepared: Prepared) -> None:
        service.record_batch(
            result,
            transport="kafka",
            size=prepared.size,
            seconds=time.perf_counter() - prepared.started,
            dead=prepared.dead,
        )
