"""Retention: applicants' personal data is purged from dossiers closed for more than N months.

Seeded through ``POST /api/v1/events`` (the real write path) at ``TEST_NOW`` (6 Nov 2024); with a
24-month retention the cutoff is 6 Nov 2022 (Vietnam dates).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.app.commands.purge import purge_command
from services.app.console import run_async
from services.reconciler.retention import (
    PURGED_MARKER,
    PersonalDataRetention,
    purge_personal_data,
    purge_with_engine,
    retention_cutoff,
)
from shared.clock import VN_TZ, fixed_clock
from shared.db import unit_of_work
from shared.dvcqg import format_thoi_diem
from shared.models import Dossier, Event
from shared.privacy import PERSONAL_FIELDS
from tests.conftest import OFFICER_KEY, SOURCE_KEY, TEST_NOW, bearer
from tests.factories import dossier_code, progress, snapshot

MONTHS = 24
NAME = "Nguyễn Thị Bích Ngọc"
ID_NUMBER = "079304001234"
# Extra DVCQG data fields, passed on through snapshot(**fields).
PERSONAL: dict[str, Any] = {"ChuHoSo": NAME, "SoGiayToChuHoSo": ID_NUMBER}


def at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 9, 0, tzinfo=VN_TZ)


RETURNED_OLD = dossier_code(1)  # returned (10) on 1 Jun 2022: purged
REFUSED_OLD = dossier_code(2)  # refused (3) on 15 Jan 2022: purged
WITHDRAWN_OLD = dossier_code(3)  # withdrawn (7), snapshot of 1 Mar 2022: purged
RETURNED_RECENT = dossier_code(4)  # returned on 10 Jan 2024: kept
STOPPED_RECENT = dossier_code(5)  # stopped (8), snapshot of 1 Oct 2024: kept
OPEN_ANCIENT = dossier_code(6)  # processing (4) since 2020: kept, however old
FINISHED_OLD = dossier_code(7)  # finished (9) in 2021 but never returned: not closed, kept
RETURNED_EDGE = dossier_code(8)  # returned on 6 Nov 2022 12:00, 2 h after the cutoff: kept
EDGE = datetime(2022, 11, 6, 12, 0, tzinfo=VN_TZ)
PURGED = (RETURNED_OLD, REFUSED_OLD, WITHDRAWN_OLD)
KEPT = (RETURNED_RECENT, STOPPED_RECENT, OPEN_ANCIENT, FINISHED_OLD, RETURNED_EDGE)


def _closing(
    code: str, prefix: str, opened: datetime, closed: datetime, status: int, **fields: Any
) -> list[dict[str, Any]]:
    """A dossier's life: received (4) with the applicant, one step, then its last snapshot."""
    return [
        snapshot(code, event_id=f"{prefix}-s1", emitted_at=opened, status=4, **PERSONAL),
        progress(code, event_id=f"{prefix}-p1", emitted_at=opened, step_at=opened),
        snapshot(code, event_id=f"{prefix}-s2", emitted_at=closed, status=status, **fields),
    ]


def history() -> list[dict[str, Any]]:
    returned_old = at(2022, 6, 1)
    refused_old = at(2022, 1, 15)
    returned_recent = at(2024, 1, 10)
    edge = EDGE
    return [
        *_closing(
            RETURNED_OLD,
            "ro",
            at(2022, 5, 2),
            returned_old,
            10,
            NgayTra=format_thoi_diem(returned_old),
            **PERSONAL,
        ),
        *_closing(
            REFUSED_OLD,
            "fo",
            at(2022, 1, 14),
            # Emitted recently, but the refusal date is what counts.
            at(2024, 10, 1),
            3,
            NgayTuChoi=format_thoi_diem(refused_old),
            **PERSONAL,
        ),
        *_closing(WITHDRAWN_OLD, "wo", at(2022, 2, 1), at(2022, 3, 1), 7, **PERSONAL),
        *_closing(
            RETURNED_RECENT,
            "rr",
            at(2023, 12, 1),
            returned_recent,
            10,
            NgayTra=format_thoi_diem(returned_recent),
            **PERSONAL,
        ),
        *_closing(STOPPED_RECENT, "sr", at(2022, 1, 3), at(2024, 10, 1), 8, **PERSONAL),
        *_closing(OPEN_ANCIENT, "oa", at(2020, 1, 6), at(2020, 2, 3), 4, **PERSONAL),
        *_closing(
            FINISHED_OLD,
            "fi",
            at(2021, 1, 4),
            at(2021, 2, 1),
            9,
            NgayKetThucXuLy=format_thoi_diem(at(2021, 2, 1)),
            **PERSONAL,
        ),
        *_closing(
            RETURNED_EDGE,
            "re",
            at(2022, 10, 3),
            edge,
            10,
            NgayTra=format_thoi_diem(edge),
            **PERSONAL,
        ),
    ]


async def post(client: httpx.AsyncClient, items: list[dict[str, Any]]) -> list[str]:
    answer = await client.post("/api/v1/events", json=items, headers=bearer(SOURCE_KEY))
    assert answer.status_code == 200, answer.text
    return [item["outcome"] for item in answer.json()["results"]]


async def snapshots(engine: AsyncEngine) -> dict[str, dict[str, Any]]:
    async with engine.connect() as connection:
        rows = await connection.execute(select(Dossier.code, Dossier.snapshot))
        return {code: data for code, data in rows.all()}


async def event_log(engine: AsyncEngine) -> dict[str, tuple[str, str, dict[str, Any]]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(Event.event_id, Event.dossier_code, Event.type, Event.data)
        )
        return {event_id: (code, kind, data) for event_id, code, kind, data in rows.all()}


def without_personal(data: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in data.items() if name not in PERSONAL_FIELDS}


@pytest.fixture
async def seeded(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    events = history()
    assert set(await post(client, events)) == {"stored"}
    return events


def test_cutoff_is_calendar_months_back_in_vietnam_time() -> None:
    assert retention_cutoff(TEST_NOW, 24) == datetime(2022, 11, 6, 10, 0, tzinfo=VN_TZ)
    assert retention_cutoff(TEST_NOW, 0) == TEST_NOW
    # 31 March minus one month clamps to 29 February (leap year), same time of day.
    march_31 = datetime(2024, 3, 31, 8, 0, tzinfo=VN_TZ)
    assert retention_cutoff(march_31, 1) == datetime(2024, 2, 29, 8, 0, tzinfo=VN_TZ)
    assert retention_cutoff(march_31, 1).tzinfo == UTC
    with pytest.raises(ValueError):
        retention_cutoff(TEST_NOW, -1)


async def test_old_closed_dossiers_lose_personal_data_in_snapshot_and_event_log(
    engine: AsyncEngine, seeded: list[dict[str, Any]]
) -> None:
    before_snapshots = await snapshots(engine)
    before_log = await event_log(engine)
    async with unit_of_work(engine, "test") as connection:
        # A small batch: the chunks (keyset on the code) must add up to the whole.
        result = await purge_personal_data(connection, now=TEST_NOW, months=MONTHS, batch=2)
    assert (result.dossiers, result.events) == (len(PURGED), 2 * len(PURGED))

    after_snapshots = await snapshots(engine)
    for code in PURGED:
        purged = after_snapshots[code]
        assert not set(PERSONAL_FIELDS) & set(purged)
        assert purged.pop(PURGED_MARKER) == TEST_NOW.isoformat()
        assert purged == without_personal(before_snapshots[code])
    for code in KEPT:
        assert after_snapshots[code] == before_snapshots[code]
        assert after_snapshots[code]["ChuHoSo"] == NAME

    after_log = await event_log(engine)
    assert after_log.keys() == before_log.keys()
    for event_id, (code, kind, data) in after_log.items():
        _, _, original = before_log[event_id]
        if code in PURGED:
            assert data == without_personal(original), event_id
            assert PURGED_MARKER not in data
        else:
            assert data == original, event_id
        if kind == "dossier.snapshot" and code in KEPT:
            assert data["SoGiayToChuHoSo"] == ID_NUMBER
    dump = orjson.dumps([after_log[e][2] for e in after_log if after_log[e][0] in PURGED])
    assert ID_NUMBER.encode() not in dump and NAME.encode() not in dump


async def test_purge_is_idempotent(engine: AsyncEngine, seeded: list[dict[str, Any]]) -> None:
    first = await purge_with_engine(engine, now=TEST_NOW, months=MONTHS)
    assert (first.dossiers, first.events) == (3, 6)
    purged_once = (await snapshots(engine), await event_log(engine))
    later = TEST_NOW + timedelta(hours=1)
    second = await purge_with_engine(engine, now=later, months=MONTHS)
    assert (second.dossiers, second.events) == (0, 0)
    # Nothing rewritten, not even the purge marker's moment.
    assert (await snapshots(engine), await event_log(engine)) == purged_once


async def test_late_redelivery_with_personal_data_is_purged_on_the_next_run(
    client: httpx.AsyncClient, engine: AsyncEngine, seeded: list[dict[str, Any]]
) -> None:
    await purge_with_engine(engine, now=TEST_NOW, months=MONTHS)
    returned_at = format_thoi_diem(at(2022, 6, 1))
    outcomes = await post(
        client,
        [
            # A late redelivery under a new id, older than the stored state: log only.
            snapshot(
                RETURNED_OLD, event_id="ro-late", emitted_at=at(2022, 5, 20), status=4, **PERSONAL
            ),
            # The same event id again: a duplicate, never written.
            snapshot(WITHDRAWN_OLD, event_id="wo-s1", emitted_at=at(2022, 2, 1), **PERSONAL),
            # A re-sent, newer snapshot of a purged dossier: becomes its state again.
            snapshot(
                RETURNED_OLD,
                event_id="ro-resent",
                emitted_at=at(2022, 6, 2),
                status=10,
                NgayTra=returned_at,
                **PERSONAL,
            ),
        ],
    )
    assert outcomes == ["stale", "duplicate", "stored"]
    assert (await snapshots(engine))[RETURNED_OLD]["ChuHoSo"] == NAME

    again = await purge_with_engine(engine, now=TEST_NOW + timedelta(hours=1), months=MONTHS)
    assert (again.dossiers, again.events) == (1, 2)
    purged = (await snapshots(engine))[RETURNED_OLD]
    assert not set(PERSONAL_FIELDS) & set(purged)
    assert purged[PURGED_MARKER] == (TEST_NOW + timedelta(hours=1)).isoformat()
    log = await event_log(engine)
    for event_id in ("ro-late", "ro-resent"):
        assert not set(PERSONAL_FIELDS) & set(log[event_id][2])
        assert log[event_id][2]["MaHoSo"] == RETURNED_OLD


async def test_only_a_redelivered_event_makes_an_already_purged_dossier_a_candidate(
    client: httpx.AsyncClient, engine: AsyncEngine, seeded: list[dict[str, Any]]
) -> None:
    await purge_with_engine(engine, now=TEST_NOW, months=MONTHS)
    marker = (await snapshots(engine))[REFUSED_OLD][PURGED_MARKER]
    stale = snapshot(
        REFUSED_OLD, event_id="fo-late", emitted_at=at(2022, 1, 20), status=4, **PERSONAL
    )
    assert await post(client, [stale]) == ["stale"]
    again = await purge_with_engine(engine, now=TEST_NOW + timedelta(hours=1), months=MONTHS)
    assert (again.dossiers, again.events) == (1, 1)
    # The stored snapshot had nothing left to purge: its marker keeps the first moment.
    assert (await snapshots(engine))[REFUSED_OLD][PURGED_MARKER] == marker
    assert "ChuHoSo" not in (await event_log(engine))["fo-late"][2]


async def test_closed_exactly_at_the_cutoff_is_kept_and_a_second_later_purged(
    engine: AsyncEngine, seeded: list[dict[str, Any]]
) -> None:
    await purge_with_engine(engine, now=TEST_NOW, months=MONTHS)
    boundary = TEST_NOW + timedelta(hours=2)
    assert retention_cutoff(boundary, MONTHS) == EDGE
    kept = await purge_with_engine(engine, now=boundary, months=MONTHS)
    assert (kept.dossiers, kept.events) == (0, 0)
    assert (await snapshots(engine))[RETURNED_EDGE]["ChuHoSo"] == NAME
    purged = await purge_with_engine(engine, now=boundary + timedelta(seconds=1), months=MONTHS)
    assert (purged.dossiers, purged.events) == (1, 2)
    assert "ChuHoSo" not in (await snapshots(engine))[RETURNED_EDGE]


async def test_the_api_shows_no_applicant_for_purged_dossiers(
    client: httpx.AsyncClient, engine: AsyncEngine, seeded: list[dict[str, Any]]
) -> None:
    await purge_with_engine(engine, now=TEST_NOW, months=MONTHS)
    for code in PURGED:
        answer = await client.get(f"/api/v1/dossiers/{code}", headers=bearer(OFFICER_KEY))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert "ChuHoSo" not in body and "SoGiayToChuHoSo" not in body
        assert NAME not in answer.text and ID_NUMBER not in answer.text
        assert body[PURGED_MARKER] == TEST_NOW.isoformat()
        assert body["code"] == code and body["status"] in (3, 7, 10)
    kept = await client.get(f"/api/v1/dossiers/{RETURNED_RECENT}", headers=bearer(OFFICER_KEY))
    assert kept.json()["ChuHoSo"] == NAME and kept.json()["SoGiayToChuHoSo"] == ID_NUMBER


async def test_the_sweep_purges_at_most_once_per_interval(
    engine: AsyncEngine, seeded: list[dict[str, Any]]
) -> None:
    retention = PersonalDataRetention(engine, fixed_clock(TEST_NOW), months=MONTHS)
    first = await retention.run_due()
    assert first is not None and (first.dossiers, first.events) == (3, 6)
    assert await retention.run_due() is None
    every_time = PersonalDataRetention(
        engine, fixed_clock(TEST_NOW), months=MONTHS, every=timedelta(0)
    )
    nothing_left = await every_time.run_due()
    assert nothing_left is not None and (nothing_left.dossiers, nothing_left.events) == (0, 0)


async def test_purge_command_reports_in_vietnamese(
    database_url: str, seeded: list[dict[str, Any]]
) -> None:
    lines: list[str] = []
    result = await purge_command(
        database_url, months=MONTHS, echo=lines.append, batch=1, clock=fixed_clock(TEST_NOW)
    )
    assert (result.dossiers, result.events) == (3, 6)
    assert lines[0].startswith("Đang xóa họ tên và số giấy tờ của chủ hồ sơ đã đóng trước")
    assert "10:00 06/11/2022" in lines[0]
    assert lines[1:-1] == ["… 1 hồ sơ, 2 sự kiện", "… 2 hồ sơ, 4 sự kiện", "… 3 hồ sơ, 6 sự kiện"]
    assert lines[-1].startswith(
        "Đã xóa dữ liệu cá nhân của 3 hồ sơ đã đóng trên 24 tháng (6 sự kiện)."
    )
    assert all(NAME not in line and ID_NUMBER not in line for line in lines)

    # The synchronous entry the CLI calls runs its own event loop.
    again: list[str] = []
    second = await asyncio.to_thread(
        run_async,
        purge_command(database_url, months=MONTHS, echo=again.append, clock=fixed_clock(TEST_NOW)),
    )
    assert (second.dossiers, second.events) == (0, 0)
    assert again[-1].startswith("Đã xóa dữ liệu cá nhân của 0 hồ sơ đã đóng trên 24 tháng")
