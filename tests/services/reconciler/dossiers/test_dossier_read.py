"""``GET /api/v1/dossiers/{code}``: the system's state, the desk's reports and the findings."""

from __future__ import annotations

import httpx
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import unit_of_work
from shared.models import Discrepancy
from tests.conftest import DESK_KEY, OFFICER_KEY, SOURCE_KEY, bearer
from tests.factories import BASE_TIME, dossier_code, snapshot

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
