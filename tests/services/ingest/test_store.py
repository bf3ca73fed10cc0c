"""The write path on PostgreSQL and SQLite: idempotent, newest snapshot wins, steps all kept."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.service import (
    DeadLetterRecord,
    EventOutcome,
    store_dead_letters,
    store_events,
)
from shared.db import unit_of_work
from shared.dvcqg import format_thoi_diem
from shared.events import DossierEvent, Reason, Rejection, parse_envelope
from shared.models import DeadLetter, Dossier, Event, ProgressStep
from tests.conftest import TEST_NOW
from tests.factories import BASE_TIME, dossier_code, progress, snapshot

CODE = dossier_code(42)


def event(envelope: dict[str, Any]) -> DossierEvent:
    parsed = parse_envelope(envelope)
    assert isinstance(parsed, DossierEvent), parsed
    return parsed


async def store(engine: AsyncEngine, *envelopes: dict[str, Any]) -> dict[str, EventOutcome]:
    async with unit_of_work(engine, "test") as connection:
        result = await store_events(connection, [event(e) for e in envelopes], now=TEST_NOW)
    return result.outcomes


async def dossier(engine: AsyncEngine) -> Dossier:
    async with engine.connect() as connection:
        row = (await connection.execute(select(Dossier).where(Dossier.code == CODE))).one()
    return Dossier(**row._mapping)


async def count(engine: AsyncEngine, table: type) -> int:
    async with engine.connect() as connection:
        return (await connection.execute(select(func.count()).select_from(table))).scalar_one()


async def test_new_snapshot_is_stored_as_the_dossier_state(engine: AsyncEngine) -> None:
    outcomes = await store(engine, snapshot(CODE, event_id="s1", emitted_at=BASE_TIME, status=4))
    assert outcomes == {"s1": "stored"}
    state = await dossier(engine)
    assert state.status == 4
    assert state.unit_code == "000.00.12.H08"
    assert state.due_at == BASE_TIME + timedelta(days=7)
    assert state.received_at == BASE_TIME


async def test_repeated_event_id_is_a_duplicate_and_changes_nothing(engine: AsyncEngine) -> None:
    first = snapshot(CODE, event_id="s1", emitted_at=BASE_TIME, status=4)
    await store(engine, first)
    replay = snapshot(CODE, event_id="s1", emitted_at=BASE_TIME + timedelta(hours=1), status=10)
    assert await store(engine, replay) == {"s1": "duplicate"}
    assert (await dossier(engine)).status == 4
    assert await count(engine, Event) == 1


async def test_duplicate_inside_one_batch_is_stored_once(engine: AsyncEngine) -> None:
    envelope = snapshot(CODE, event_id="s1", emitted_at=BASE_TIME)
    assert await store(engine, envelope, envelope) == {"s1": "stored"}
    assert await count(engine, Event) == 1


async def test_older_snapshot_never_overwrites_a_newer_one(engine: AsyncEngine) -> None:
    await store(
        engine, snapshot(CODE, event_id="s2", emitted_at=BASE_TIME + timedelta(days=1), status=10)
    )
    outcomes = await store(engine, snapshot(CODE, event_id="s1", emitted_at=BASE_TIME, status=4))
    assert outcomes == {"s1": "stale"}
    assert (await dossier(engine)).status == 10
    assert await count(engine, Event) == 2


async def test_equal_emitted_at_is_decided_by_event_id(engine: AsyncEngine) -> None:
    await store(engine, snapshot(CODE, event_id="b", emitted_at=BASE_TIME, status=9))
    assert await store(engine, snapshot(CODE, event_id="a", emitted_at=BASE_TIME, status=4)) == {
        "a": "stale"
    }
    assert await store(engine, snapshot(CODE, event_id="c", emitted_at=BASE_TIME, status=10)) == {
        "c": "stored"
    }
    assert (await dossier(engine)).status == 10


async def test_older_snapshot_in_the_same_batch_is_logged_and_the_newest_wins(
    engine: AsyncEngine,
) -> None:
    outcomes = await store(
        engine,
        snapshot(CODE, event_id="new", emitted_at=BASE_TIME + timedelta(hours=2), status=9),
        snapshot(CODE, event_id="old", emitted_at=BASE_TIME, status=4),
    )
    assert outcomes == {"new": "stored", "old": "stored"}
    assert (await dossier(engine)).status == 9


async def test_progress_steps_are_all_kept_in_time_order(engine: AsyncEngine) -> None:
    late = progress(
        CODE,
        event_id="p2",
        emitted_at=BASE_TIME + timedelta(hours=1),
        step_at=BASE_TIME + timedelta(hours=1),
        officer="b.canbo",
    )
    early = progress(
        CODE,
        event_id="p1",
        emitted_at=BASE_TIME + timedelta(hours=2),
        step_at=BASE_TIME,
        officer="a.canbo",
    )
    await store(engine, late)
    await store(engine, early)
    async with engine.connect() as connection:
        steps = (
            (
                await connection.execute(
                    select(ProgressStep.event_id).order_by(
                        ProgressStep.step_at, ProgressStep.emitted_at, ProgressStep.event_id
                    )
                )
            )
            .scalars()
            .all()
        )
    assert steps == ["p1", "p2"]
    assert (await dossier(engine)).responsible == "b.canbo"


async def test_dossier_seen_only_through_steps_has_no_status(engine: AsyncEngine) -> None:
    await store(engine, progress(CODE, event_id="p1", emitted_at=BASE_TIME, step_at=BASE_TIME))
    state = await dossier(engine)
    assert state.status is None
    assert state.responsible == "tranthib.vpdkdd"


async def test_snapshot_after_steps_keeps_the_responsible_officer(engine: AsyncEngine) -> None:
    await store(engine, progress(CODE, event_id="p1", emitted_at=BASE_TIME, step_at=BASE_TIME))
    await store(engine, snapshot(CODE, event_id="s1", emitted_at=BASE_TIME, status=4))
    state = await dossier(engine)
    assert (state.status, state.responsible) == (4, "tranthib.vpdkdd")


async def test_apology_moves_the_effective_due_date(engine: AsyncEngine) -> None:
    new_due = BASE_TIME + timedelta(days=20)
    apology = {
        "NgayYeuCau": format_thoi_diem(BASE_TIME + timedelta(days=6)),
        "NgayHenTraMoi": format_thoi_diem(new_due),
    }
    supplement = {
        "NgayYeuCau": format_thoi_diem(BASE_TIME + timedelta(days=2)),
        "NgayHenTraMoi": format_thoi_diem(BASE_TIME + timedelta(days=10)),
    }
    await store(
        engine,
        snapshot(
            CODE,
            event_id="s1",
            emitted_at=BASE_TIME,
            DanhSachXinLoi=[apology],
            DanhSachHoSoBoSung=[supplement],
        ),
    )
    assert (await dossier(engine)).due_at == new_due


async def test_dead_letter_is_kept_once_even_when_redelivered(engine: AsyncEngine) -> None:
    record = DeadLetterRecord(
        "tthc.hoso.events", 0, 17, b"k", b"\xff", Rejection(Reason.INVALID_UTF8, "bad byte")
    )
    async with unit_of_work(engine, "test") as connection:
        assert await store_dead_letters(connection, [record], now=TEST_NOW) == 1
    async with unit_of_work(engine, "test") as connection:
        assert await store_dead_letters(connection, [record], now=TEST_NOW) == 0
    async with engine.connect() as connection:
        row = (await connection.execute(select(DeadLetter))).one()
    assert (row.payload, row.reason, row.offset) == (b"\xff", "invalid_utf8", 17)
