"""``GET /api/v1/dossiers/{code}``: the system's state, the desk's reports and the findings."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import VN_TZ
from shared.db import unit_of_work
from shared.dvcqg import format_thoi_diem
from shared.models import Discrepancy
from tests.conftest import DESK_KEY, OFFICER_KEY, SOURCE_KEY, bearer
from tests.factories import BASE_TIME, dossier_code, progress, snapshot

CODE = dossier_code(11)


async def test_dossier_lists_field_reports_and_discrepancies(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await client.post(
        "/api/v1/events",
        headers=bearer(SOURCE_KEY),
        json=[snapshot(CODE, event_id="s1", emitted_at=BASE_TIME, status=4)],
    )
    report = {
        "report_id": "desk-1",
        "dossier_code": CODE,
        "kind": "returned",
        "occurred_at": "2024-10-30T10:40:00+07:00",
        "officer": "lethic.motcua",
        "unit_code": "000.00.12.H08",
    }
    assert (
        await client.post("/api/v1/field-reports", json=report, headers=bearer(DESK_KEY))
    ).status_code == 201
    async with unit_of_work(engine, "test") as connection:
        await connection.execute(
            insert(Discrepancy).values(
                dossier_code=CODE,
                kind="RETURNED_BUT_OPEN",
                severity="critical",
                status="open",
                unit_code="000.00.12.H08",
                since=BASE_TIME,
                opened_at=BASE_TIME,
                details={},
                updated_at=BASE_TIME,
            )
        )
    body = (await client.get(f"/api/v1/dossiers/{CODE}", headers=bearer(OFFICER_KEY))).json()
    assert [r["report_id"] for r in body["field_reports"]] == ["desk-1"]
    assert body["field_reports"][0]["occurred_at"] == "2024-10-30T10:40:00+07:00"
    assert [(d["kind"], d["status"]) for d in body["discrepancies"]] == [
        ("RETURNED_BUT_OPEN", "open")
    ]
    assert body["status"] == 4


async def test_a_late_dossier_says_where_the_time_went(client: httpx.AsyncClient) -> None:
    """``lateness`` (contract §7): the step that overran its allowance, in working hours."""
    code = dossier_code(12)
    received = datetime(2024, 10, 28, 8, tzinfo=VN_TZ)  # a Monday
    step = progress(
        code,
        event_id="p1",
        emitted_at=received + timedelta(hours=1),
        step_at=received + timedelta(hours=1),
        officer="tranthib.vpdkdd",
    )
    step["data"]["NgayKetThucTheoQuyDinh"] = format_thoi_diem(received + timedelta(days=1))
    envelopes = [
        snapshot(
            code,
            event_id="s1",
            emitted_at=received,
            status=4,
            NgayTiepNhan=format_thoi_diem(received),
            NgayHenTra=format_thoi_diem(received + timedelta(days=2)),
        ),
        step,
    ]
    answer = await client.post("/api/v1/events", headers=bearer(SOURCE_KEY), json=envelopes)
    assert answer.status_code == 200, answer.text
    body = (await client.get(f"/api/v1/dossiers/{code}", headers=bearer(OFFICER_KEY))).json()
    lateness = body["lateness"]
    assert lateness["late"] is True  # still open at TEST_NOW, days past its due date
    [charged] = lateness["steps"]
    assert charged["officer"] == "tranthib.vpdkdd"
    assert charged["allowed_until"] == "2024-10-29T08:00:00+07:00"
    assert charged["overrun_working_hours"] == lateness["overrun_working_hours"] > 0


async def test_a_dossier_on_time_has_no_lateness(client: httpx.AsyncClient) -> None:
    await client.post(
        "/api/v1/events",
        headers=bearer(SOURCE_KEY),
        json=[
            snapshot(
                CODE,
                event_id="s9",
                emitted_at=BASE_TIME,
                status=10,
                NgayTra=format_thoi_diem(BASE_TIME + timedelta(days=1)),
            )
        ],
    )
    body = (await client.get(f"/api/v1/dossiers/{CODE}", headers=bearer(OFFICER_KEY))).json()
    assert body["lateness"] == {"late": False, "overrun_working_hours": 0.0, "steps": []}
