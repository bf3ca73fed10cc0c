"""Ingest keeps each dossier's date marks, whatever order its snapshots arrive in, and the
reconciler finds a rewrite from them (DATES_REWRITTEN, contract §4)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.event import listen, remove
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.service import store_events
from services.reconciler.config import ReconcilerSettings
from services.reconciler.worker import Reconciler
from shared.date_marks import COLUMNS
from shared.db import unit_of_work
from shared.dvcqg import format_thoi_diem
from shared.events import DossierEvent, parse_envelope
from shared.models import Discrepancy, Dossier
from tests.factories import BASE_TIME, dossier_code, snapshot

CODE = dossier_code(7)
DUE = BASE_TIME + timedelta(days=5)


def envelopes(code: str = CODE) -> list[dict[str, Any]]:
    """Received, then — after the due date passed — the same dossier with a later NgayHenTra."""
    return [
        snapshot(
            code,
            event_id=f"s1-{code}",
            emitted_at=BASE_TIME,
            status=4,
            NgayHenTra=format_thoi_diem(DUE),
        ),
        snapshot(
            code,
            event_id=f"s2-{code}",
            emitted_at=BASE_TIME + timedelta(days=6),
            status=4,
            NgayHenTra=format_thoi_diem(DUE + timedelta(days=3)),
        ),
    ]


async def store_one_by_one(engine: AsyncEngine, items: list[dict[str, Any]]) -> None:
    for item in items:
        event = parse_envelope(item)
        assert isinstance(event, DossierEvent)
        async with unit_of_work(engine, "test") as connection:
            await store_events(connection, [event], now=BASE_TIME + timedelta(days=7))


async def marks(engine: AsyncEngine, code: str) -> tuple[Any, ...]:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(*(getattr(Dossier, name) for name in COLUMNS)).where(Dossier.code == code)
            )
        ).one()
    return tuple(row)


@pytest.mark.parametrize("rewrite_first", [False, True], ids=["in-order", "rewrite-first"])
async def test_a_rewritten_due_date_is_found_whatever_the_arrival_order(
    engine: AsyncEngine, database_url: str, rewrite_first: bool
) -> None:
    items = envelopes()
    await store_one_by_one(engine, items[::-1] if rewrite_first else items)
    clock = BASE_TIME + timedelta(days=7)
    settings = ReconcilerSettings(database_url=database_url, _env_file=None)
    await Reconciler(settings, engine, lambda: clock).drain()
    async with engine.connect() as connection:
        found = (
            await connection.execute(
                select(Discrepancy.kind, Discrepancy.severity, Discrepancy.details).where(
                    Discrepancy.kind == "DATES_REWRITTEN"
                )
            )
        ).all()
    [(_, severity, details)] = found
    assert severity == "critical"
    assert details["field"] == "NgayHenTra"
    assert details["before"].startswith(DUE.astimezone(BASE_TIME.tzinfo).date().isoformat())


async def test_both_orders_leave_the_same_marks(engine: AsyncEngine, database_url: str) -> None:
    other = dossier_code(8)
    await store_one_by_one(engine, envelopes())
    await store_one_by_one(engine, envelopes(other)[::-1])
    assert await marks(engine, other) == await marks(engine, CODE)


def history(code: str, snapshots: int) -> list[dict[str, Any]]:
    """``snapshots`` snapshots of one dossier, an hour apart, each promising the same date."""
    return [
        snapshot(
            code,
            event_id=f"h{n}-{code}",
            emitted_at=BASE_TIME + timedelta(hours=n),
            status=4,
            NgayHenTra=format_thoi_diem(DUE),
        )
        for n in range(snapshots)
    ]


async def test_keeping_the_marks_costs_the_same_however_long_the_history(
    engine: AsyncEngine, database_url: str
) -> None:
    """O(1) per snapshot: storing and judging one more snapshot issues the same statements
    after 2 snapshots as after 60, and none of them reads the event log."""

    async def statements_for_one_more(code: str, earlier: int) -> list[str]:
        items = history(code, earlier + 1)
        await store_one_by_one(engine, items[:-1])
        seen: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            seen.append(" ".join(statement.split()))

        listen(engine.sync_engine, "before_cursor_execute", record)
        try:
            await store_one_by_one(engine, items[-1:])
            clock = BASE_TIME + timedelta(days=8)  # after the marks store_one_by_one sets
            settings = ReconcilerSettings(database_url=database_url, _env_file=None)
            await Reconciler(settings, engine, lambda: clock).drain()
        finally:
            remove(engine.sync_engine, "before_cursor_execute", record)
        return seen

    short = await statements_for_one_more(dossier_code(20), 2)
    long = await statements_for_one_more(dossier_code(21), 60)
    assert len(short) == len(long), (short, long)
    assert not [s for s in long if re.search(r"\bFROM events\b", s, re.IGNORECASE)]
