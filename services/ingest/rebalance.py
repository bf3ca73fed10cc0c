"""The consumer's rebalance listener: partitions move between members only between batches,
and the newly assigned ones are recorded before anything of them is fetched."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from aiokafka import TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from services.ingest.positions import PartitionPositions

log = logging.getLogger("doisoat.ingest")


class CommitBeforeRevoke(ConsumerRebalanceListener):
    """Let the batch in flight finish (and commit) before partitions move to another member.

    ``lane_locks``: each held by a lane's batch from its transaction to its offset commit.
    """

    def __init__(self, lane_locks: Sequence[asyncio.Lock], positions: PartitionPositions) -> None:
        self._lane_locks = lane_locks
        self._positions = positions

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        async with contextlib.AsyncExitStack() as stack:
            for lock in self._lane_locks:  # always in lane order
                await stack.enter_async_context(lock)
            self._positions.revoked(revoked)
        log.info("partitions revoked", extra={"partitions": [tp.partition for tp in revoked]})

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        self._positions.assigned(assigned)
        await self._positions.record_assignment()
        self._positions.report_soon()
        log.info("partitions assigned", extra={"partitions": [tp.partition for tp in assigned]})
