"""Lanes: a fixed share of the partitions each, so that batches of different lanes can be in
the database at the same time.

One transaction at a time kept one PostgreSQL backend busy while the machine's other core was
half idle (bench/README.md). Two transactions at once must not touch the same dossier rows in
a different order, nor store one partition's messages out of order: a partition always belongs
to the same lane (its number modulo the lane count), the procedure system keys its messages by
``MaHoSo`` (contract §1, so one dossier lives in one partition), and a lane has at most one
batch in flight, its offsets committed after its own database commit. Pure functions: the
consumer (``consumer.py``) does the I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from aiokafka import TopicPartition

Records = TypeVar("Records")


def lane_of(tp: TopicPartition, lanes: int) -> int:
    """The lane a partition belongs to, the same after every rebalance."""
    return int(tp.partition) % lanes


def split(
    batch: Mapping[TopicPartition, Records], lanes: int
) -> dict[int, dict[TopicPartition, Records]]:
    """A fetched batch cut by lane (lanes without messages left out), partitions in order."""
    by_lane: dict[int, dict[TopicPartition, Records]] = {}
    for tp in sorted(batch, key=lambda tp: (tp.topic, tp.partition)):
        by_lane.setdefault(lane_of(tp, lanes), {})[tp] = batch[tp]
    return by_lane
