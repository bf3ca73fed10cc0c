"""What a Kafka member knows of the partitions it holds, and tells others: how far it stored
each one (in the database, for the ingest watermark) and how far behind it is (in Prometheus,
for the ingest autoscaler).

Kept apart from the consume loop (``consumer.py``): the loop decides what to fetch and store;
this keeps the books a rebalance must leave consistent (``rebalance.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest import lanes, progress
from shared import metrics
from shared.clock import Clock
from shared.db import unit_of_work

log = logging.getLogger("doisoat.ingest")


class PartitionPositions:
    """The stored position, the reporting and the lag of each partition this member holds."""

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        *,
        member: str,
        lane_count: int,
        report_every_seconds: float,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self.member = member
        self._lane_count = lane_count
        self._report_every_seconds = report_every_seconds
        self._last_report = 0.0
        # The next offset stored per assigned partition (absent until this member stored one).
        self.stored: dict[TopicPartition, int] = {}
        # Assigned partitions not yet recorded as such (see :meth:`record_assignment`).
        self.unrecorded: set[TopicPartition] = set()
        # The partitions whose lag gauge this member set (and must remove when they move).
        self.lag_labels: set[tuple[str, str]] = set()

    def assigned(self, partitions: Iterable[TopicPartition]) -> None:
        """Newly assigned partitions: to be recorded before anything of them is fetched."""
        self.unrecorded.update(partitions)

    def report_soon(self) -> None:
        """Report the partitions' progress at the next idle poll (after an assignment)."""
        self._last_report = 0.0

    def revoked(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions moved to another member: their lag is no longer this member's to report."""
        for tp in partitions:
            labels = (tp.topic, str(tp.partition))
            if labels in self.lag_labels:
                metrics.INGEST_CONSUMER_LAG.remove(*labels)
                self.lag_labels.discard(labels)
            self.stored.pop(tp, None)
            self.unrecorded.discard(tp)

    def stored_up_to(self, offsets: Mapping[TopicPartition, int]) -> None:
        """A batch's transaction committed: the next offsets to store."""
        self.stored.update(offsets)

    async def record_assignment(self) -> bool:
        """Record the newly assigned partitions as not stored yet, before any batch of them.

        Each lane's transaction reports only its own partitions, and the watermark is taken
        over the partitions reported: were one lane's partitions caught up before the other
        lane's first transaction committed, the watermark would be *now* while the other
        lane's events are still in Kafka. Reported without a position, a partition keeps the
        watermark unknown until this member has stored it. Nothing is fetched while this has
        not succeeded (the database away: the consume loop retries).
        """
        if not self.unrecorded:
            return True
        reports = [
            progress.PartitionReport(tp.topic, tp.partition, None, None, None)
            for tp in sorted(self.unrecorded, key=lambda tp: (tp.topic, tp.partition))
        ]
        if not await self._write(reports):
            return False
        self.unrecorded.clear()
        return True

    def lane_reports(
        self,
        consumer: AIOKafkaConsumer,
        lane: int,
        offsets: Mapping[TopicPartition, int],
        newest: Mapping[TopicPartition, datetime],
    ) -> list[progress.PartitionReport]:
        """For a lane's batch (its next ``offsets``, the ``newest`` emitted_at per partition):
        every assigned partition of the lane, not only the batch's.

        While one partition's backlog is drained the others' high-water marks move too, and a
        partition this member has not stored yet is reported without a position (the watermark
        is then unknown). Not the other lanes' partitions: their batches' transactions write
        those rows, and two transactions writing the same rows would wait for each other.
        """
        positions = {**self.stored, **offsets}
        return [
            progress.PartitionReport(
                tp.topic,
                tp.partition,
                positions.get(tp),
                consumer.highwater(tp),
                newest.get(tp),
            )
            for tp in {*consumer.assignment(), *offsets}
            if lanes.lane_of(tp, self._lane_count) == lane
        ]

    async def report_idle(self, consumer: AIOKafkaConsumer, *, busy: set[int]) -> None:
        """Nothing fetched for an idle lane is left unstored: report the position of every
        assigned partition of the lanes without a batch in flight (``busy``: those with one).

        Throttled to ``kafka_report_every_seconds``; a partition reported by nobody for the
        reconciler's staleness limit makes the watermark unknown, so this is the heartbeat.
        """
        if time.monotonic() - self._last_report < self._report_every_seconds:
            return
        reports = []
        for tp in consumer.assignment():
            if lanes.lane_of(tp, self._lane_count) in busy:
                continue
            try:
                position = await consumer.position(tp)
            except IllegalStateError:
                continue
            reports.append(
                progress.PartitionReport(
                    tp.topic, tp.partition, position, consumer.highwater(tp), None
                )
            )
        if not reports or not await self._write(reports):
            return
        self.stored.update(
            {
                TopicPartition(report.topic, report.partition): report.position
                for report in reports
                if report.position is not None
            }
        )
        # A partition not fetched yet has no high-water mark: report again at the next poll.
        known = all(report.high_water is not None for report in reports)
        self._last_report = time.monotonic() if known else 0.0

    async def update_lag(self, consumer: AIOKafkaConsumer) -> None:
        """The lag of each partition this member holds now, and none of those it gave away.

        A rebalance can land while this awaits a position: a partition revoked meanwhile is
        not set again, and one left over from such a race is removed at the next update, so
        the gauges summed over the group's members are the topic's backlog (what the ingest
        autoscaler reads), each partition counted once.
        """
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            try:
                position = await consumer.position(tp)
            except IllegalStateError:
                continue
            if tp not in consumer.assignment():
                continue
            labels = (tp.topic, str(tp.partition))
            self.lag_labels.add(labels)
            metrics.INGEST_CONSUMER_LAG.labels(*labels).set(max(highwater - position, 0))
        held = {(tp.topic, str(tp.partition)) for tp in consumer.assignment()}
        for labels in self.lag_labels - held:
            metrics.INGEST_CONSUMER_LAG.remove(*labels)
            self.lag_labels.discard(labels)

    async def _write(self, reports: list[progress.PartitionReport]) -> bool:
        """Partition reports in a small transaction of their own; False when it failed (the
        caller tries again later)."""
        try:
            async with unit_of_work(self._engine, "ingest_progress") as connection:
                await progress.report_partitions(
                    connection, reports, consumer=self.member, now=self._clock()
                )
        except Exception:
            log.warning("partition progress not recorded; retrying", exc_info=True)
            return False
        return True
