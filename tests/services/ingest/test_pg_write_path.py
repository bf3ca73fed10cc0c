"""PostgreSQL's one-statement write path keeps exactly the dossier rows the portable path keeps.

On PostgreSQL a batch writes each touched dossier row once, in SQL: the newest snapshot, the
newest step and the ``DATES_REWRITTEN`` marks together (``services/ingest/pg_bulk.py``). The
portable path (SQLite) does the same in Python, one concern after another
(``shared.date_marks.merge``). For any snapshots — due dates promised and moved by supplement
requests and apologies, end stamps, colliding emission times — and steps, cut into any batches
on PostgreSQL and applied one by one on SQLite, the two databases hold the same dossier rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.service import store_events
from shared.db import create_engine, unit_of_work
from shared.dvcqg import format_thoi_diem
from shared.events import DossierEvent, parse_envelope
from shared.models import Dossier, DossierStatusSeen, Event, ProgressStep
from tests.conftest import TEST_NOW
from tests.factories import BASE_TIME, dossier_code, progress, snapshot

CODES = [dossier_code(n) for n in range(2)]
MOMENTS = [BASE_TIME + timedelta(hours=h) for h in range(3)]
DAYS = [format_thoi_diem(BASE_TIME + timedelta(days=d)) for d in (5, 7, 12)]
REQUESTS = [format_thoi_diem(BASE_TIME + timedelta(days=d)) for d in (2, 3)]


def reschedules(draw: st.DrawFn) -> list[dict[str, str]]:
    return [
        {
            "NgayYeuCau": draw(st.sampled_from(REQUESTS)),
            "NgayHenTraMoi": draw(st.sampled_from(DAYS)),
        }
        for _ in range(draw(st.integers(0, 2)))
    ]


@st.composite
def events(draw: st.DrawFn) -> list[DossierEvent]:
    """Distinct events whose dates collide often (ties are where the two paths could differ)."""
    drawn: list[DossierEvent] = []
    for index in range(draw(st.integers(1, 12))):
        code = draw(st.sampled_from(CODES))
        emitted_at = draw(st.sampled_from(MOMENTS))
        event_id = f"{draw(st.sampled_from('ab'))}{index:02d}"
        if draw(st.booleans()):
            fields: dict[str, Any] = {"NgayHenTra": draw(st.sampled_from(DAYS))}
            if apologies := reschedules(draw):
                fields["DanhSachXinLoi"] = apologies
            if supplements := reschedules(draw):
                fields["DanhSachHoSoBoSung"] = supplements
            status = draw(st.sampled_from([4, 9, 10]))
            if status >= 9:
                fields["NgayKetThucXuLy"] = draw(st.sampled_from(DAYS))
            if status == 10:
                fields["NgayTra"] = draw(st.sampled_from(DAYS))
            envelope = snapshot(
                code, event_id=event_id, emitted_at=emitted_at, status=status, **fields
            )
        else:
            envelope = progress(
                code,
                event_id=event_id,
                emitted_at=emitted_at,
                step_at=draw(st.sampled_from(MOMENTS)),
                officer=draw(st.sampled_from(["an", "binh"])),
            )
        event = parse_envelope(envelope)
        assert isinstance(event, DossierEvent), event
        drawn.append(event)
    return drawn


@pytest.fixture
async def engines(
    pg_database_url: str, sqlite_database_url: str
) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    built = (create_engine(pg_database_url), create_engine(sqlite_database_url))
    yield built
    for engine in built:
        await engine.dispose()


async def clear(engine: AsyncEngine) -> None:
    async with unit_of_work(engine, "test") as connection:
        for table in (ProgressStep, DossierStatusSeen, Event, Dossier):
            await connection.execute(delete(table))


async def dossier_rows(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    async with engine.connect() as connection:
        rows = await connection.execute(select(Dossier.__table__).order_by(Dossier.code))
        return [tuple(row) for row in rows.all()]


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(drawn=events(), data=st.data())
async def test_one_statement_on_postgresql_keeps_the_rows_the_portable_path_keeps(
    engines: tuple[AsyncEngine, AsyncEngine], drawn: list[DossierEvent], data: st.DataObject
) -> None:
    postgresql, sqlite = engines
    await clear(postgresql)
    await clear(sqlite)
    delivered = data.draw(st.permutations(drawn))
    cuts = sorted(data.draw(st.sets(st.integers(1, max(len(delivered) - 1, 1)), max_size=3)))
    for start, end in zip([0, *cuts], [*cuts, len(delivered)], strict=True):
        if delivered[start:end]:
            async with unit_of_work(postgresql, "test") as connection:
                await store_events(connection, delivered[start:end], now=TEST_NOW)
    for event in drawn:
        async with unit_of_work(sqlite, "test") as connection:
            await store_events(connection, [event], now=TEST_NOW)
    assert await dossier_rows(postgresql) == await dossier_rows(sqlite)
