"""The ingest write path alone: parse, build and store the benchmark workload, no broker.

``bench/ingest.py`` measures the whole pipeline, where the broker, the consumer and PostgreSQL
share the cores; this isolates the part that runs inside the database transaction, so a change
to the write path can be compared in seconds:

    .venv/bin/python bench/ingest_store.py                     # 200,000 events, batches of 5,000
    .venv/bin/python bench/ingest_store.py --events 50000 --batch 2000

Prints, per event: parsing, building the batch (``service.pending_batch``), and the store
(``service.store_pending``: wall time and this process's CPU), split by statement, and the
commit per batch. A fresh database on the test server is created and dropped; the engine is the
services' own (``shared.db.create_engine``), so the store runs with their driver options.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: find ``tests`` and the sibling benchmark
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common.console import sigterm_as_interrupt
from bench.common.database import BenchDatabase
from bench.common.ingest_workload import generate
from services.ingest import marks, pg_bulk, service
from services.reconciler import schedule
from shared.db import create_engine
from shared.events import DossierEvent, parse_message

_spent: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])


def _timed(module: Any, name: str) -> None:
    """Wrap ``module.name`` (a coroutine function) to add its wall and CPU time to ``_spent``."""
    original: Callable[..., Awaitable[Any]] = getattr(module, name)

    async def timed(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return await original(*args, **kwargs)
        finally:
            _spent[name][0] += time.perf_counter() - wall
            _spent[name][1] += time.process_time() - cpu

    setattr(module, name, timed)


async def _explain(engine: AsyncEngine, item: service.PendingBatch) -> None:
    """The plan of the batch statement for ``item``, executed and rolled back, with the
    transaction's settings as ``write_batch`` sets them."""
    assert item.postgresql is not None
    statement = text("EXPLAIN (ANALYZE, BUFFERS) " + pg_bulk.WRITE_BATCH.text)
    async with engine.connect() as connection:
        await connection.begin()
        await connection.execute(pg_bulk.BATCH_WORK_MEM)
        plan = await connection.execute(
            statement, {"events": item.postgresql.document, "now": datetime.now(UTC)}
        )
        print("plan of the last batch's statement (rolled back):")
        for (line,) in plan:
            print(f"  {line}")
        await connection.rollback()


async def _store(events: list[DossierEvent], batch: int, *, explain: bool) -> None:
    database = BenchDatabase(f"bench_store_{os.getpid()}")
    try:
        engine = create_engine(await database.create_async())
        try:
            started = time.perf_counter()
            pending = [
                service.pending_batch(events[i : i + batch], postgresql=True)
                for i in range(0, len(events), batch)
            ]
            per_event = 1e6 / len(events)
            print(f"build   {(time.perf_counter() - started) * per_event:6.1f} µs/event")
            commit = 0.0
            wall, cpu = time.perf_counter(), time.process_time()
            if explain:
                *pending, last = pending
            for item in pending:
                async with engine.connect() as connection:
                    await connection.begin()
                    await service.store_pending(connection, item, now=datetime.now(UTC))
                    before_commit = time.perf_counter()
                    await connection.commit()
                    commit += time.perf_counter() - before_commit
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            commit_ms = commit / len(pending) * 1e3
            print(
                f"store   {wall * per_event:6.1f} µs/event wall, {cpu * per_event:5.1f} µs CPU "
                f"here ({len(events) / wall:,.0f} events/s); commit {commit_ms:.1f} ms/batch"
            )
            for step, (step_wall, step_cpu) in _spent.items():
                print(
                    f"  {step:20s} {step_wall * per_event:6.1f} µs/event wall, "
                    f"{step_cpu * per_event:5.1f} µs CPU here"
                )
            if explain:
                await _explain(engine, last)
        finally:
            await engine.dispose()
    finally:
        await database.drop_async()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--dossiers", type=int, default=None, help="default: events / 10")
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--explain",
        action="store_true",
        help="EXPLAIN ANALYZE the last batch instead of storing it",
    )
    args = parser.parse_args(argv)
    sigterm_as_interrupt()  # unwind like Ctrl-C: the database is dropped either way
    workload = generate(args.events, args.dossiers or args.events // 10, args.seed)
    started = time.perf_counter()
    events = []
    for key, value in workload.messages:
        parsed = parse_message(value, key)
        if isinstance(parsed, DossierEvent):
            events.append(parsed)
    elapsed = time.perf_counter() - started
    print(f"parse   {elapsed / len(workload.messages) * 1e6:6.1f} µs/message")
    _timed(pg_bulk, "write_batch")
    _timed(schedule, "mark_for_reconcile")
    _timed(marks, "record")
    asyncio.run(_store(events, args.batch, explain=args.explain))
    return 0


if __name__ == "__main__":
    sys.exit(main())
