"""The consumer's rebalance listener: partitions move between members only between batches,
and the newly assigned ones are recorded before anything of them is fetched."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from aiokafka import TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from shared import metrics

log = logging.getLogger("doisoat.ingest")


class Rebalanced(Protocol):
    """What of the consumer (``consumer.KafkaIngestor``) a rebalance touches."""

    lane_locks: list[asyncio.Lock]
    lag_labels: set[tuple[str, str]]
    stored_positions: dict[TopicPartition, int]
    unrecorded: set[TopicPartition]

    async def record_assignment(self) -> bool: ...

    def report_soon(self) -> None: ...


class CommitBeforeRevoke(ConsumerRebalanceListener):
    """Let the batch in flight finish (and commit) before partitions move to another member."""

    def __init__(self, ingestor: Rebalanced) -> None:
        self._ingestor = ingestor

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        async with contextlib.AsyncExitStack() as stack:
            for lock in self._ingestor.lane_locks:  # always in lane order
                await stack.enter_async_context(lock)
            for tp in revoked:
                labels = (tp.topic, str(tp.partition))
                if labels in self._ingestor.lag_labels:
                    metrics.INGEST_CONSUMER_LAG.remove(*labels)
                    self._ingestor.lag_labels.discard(labels)
                self._ingestor.stored_positions.pop(tp, None)
                self._ingestor.unrecorded.discard(tp)
        log.info("partitions revoked", extra={"partitions": [tp.partition for tp in revoked]})

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        self._ingestor.unrecorded.update(assigned)
        await self._ingestor.record_assignment()
        self._ingestor.report_soon()
        log.info("partitions assigned", extra={"partitions": [tp.partition for tp in assigned]})
