"""A fetched batch parsed, checked and turned into its statements' parameters (CPU only), so
that its transaction only waits for the database."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

from aiokafka import ConsumerRecord, TopicPartition

from services.ingest import service
from shared.events import DossierEvent, parse_message

_PARSE_SLICE = 50  # messages parsed between two yields to the event loop (about 2 ms of CPU)


@dataclass(slots=True)
class Prepared:
    """A parsed batch waiting for its transaction, its statements' parameters already built."""

    started: float
    batch: service.PendingBatch
    dead: list[service.DeadLetterRecord]
    offsets: dict[TopicPartition, int]
    first: dict[TopicPartition, int]
    newest: dict[TopicPartition, datetime]  # emitted_at of the newest event per partition
    size: int


async def prepare(
    batch: dict[TopicPartition, list[ConsumerRecord]], *, postgresql: bool, max_bytes: int
) -> Prepared:
    """Parse and check every message of a batch and build its statements.

    The work is cut in slices with a yield to the event loop between them: the batches in
    flight send their next statement as soon as PostgreSQL answered the last one, instead of
    waiting for the whole batch to be parsed.
    """
    started = time.perf_counter()
    events = service.BatchBuilder(postgresql=postgresql)
    dead: list[service.DeadLetterRecord] = []
    offsets: dict[TopicPartition, int] = {}
    first: dict[TopicPartition, int] = {}
    newest: dict[TopicPartition, datetime] = {}
    for tp, records in batch.items():
        first[tp] = records[0].offset
        offsets[tp] = records[-1].offset + 1
        for index, record in enumerate(records):
            if index % _PARSE_SLICE == _PARSE_SLICE - 1:
                await asyncio.sleep(0)
            parsed = parse_message(record.value, record.key, max_bytes=max_bytes)
            if isinstance(parsed, DossierEvent):
                events.add(parsed)
                if tp not in newest or parsed.emitted_at > newest[tp]:
                    newest[tp] = parsed.emitted_at
            else:
                dead.append(
                    service.DeadLetterRecord(
                        tp.topic,
                        tp.partition,
                        record.offset,
                        record.key,
                        record.value or b"",
                        parsed,
                    )
                )
    size = sum(len(records) for records in batch.values())
    return Prepared(started, events.build(), dead, offsets, first, newest, size)
