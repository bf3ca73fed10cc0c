"""The read helpers the dossier API and the reconciler use: ``reports_for`` and ``report_read``."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reconciler.reports import service
from tests.services.reconciler.reports.conftest import import_csv, register

UNIT = "000.00.12.H08"
FIRST = f"{UNIT}-241021-0001"
SECOND = f"{UNIT}-241021-0002"


async def test_reports_for_gives_every_code_asked_its_reports_oldest_first(
    reports_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await import_csv(
        reports_client,
        register(
            f"{FIRST},tra_ket_qua,30/10/2024 10:40,lethic.motcua,{UNIT},lần 2",
            f"{FIRST},rut_ho_so,29/10/2024 15:05,lethic.motcua,{UNIT},lần 1",
            f"{SECOND},tra_ket_qua,30/10/2024 10:40,lethic.motcua,{UNIT},",
        ),
    )
    async with engine.connect() as connection:
        found = await service.reports_for(connection, [FIRST, "000.00.12.H08-unknown"])
    assert set(found) == {FIRST, "000.00.12.H08-unknown"}
    assert found["000.00.12.H08-unknown"] == []
    assert [(row.kind, row.note) for row in found[FIRST]] == [
        ("withdrawn", "lần 1"),
        ("returned", "lần 2"),
    ]
    assert found[FIRST][0].occurred_at == datetime(2024, 10, 29, 8, 5, tzinfo=UTC)


async def test_reports_for_no_codes_is_empty(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        assert await service.reports_for(connection, []) == {}


def stored_row() -> service.FieldReportRow:
    return service.FieldReportRow(
        report_id="r1",
        dossier_code=FIRST,
        kind="returned",
        occurred_at=datetime(2024, 10, 30, 3, 40, tzinfo=UTC),
        officer="lethic.motcua",
        unit_code=UNIT,
        note=None,
        channel="csv",
        received_at=datetime(2024, 11, 6, 3, 0, tzinfo=UTC),
    )


def test_report_read_shows_every_field_with_moments_in_vietnam_time() -> None:
    assert service.report_read(stored_row()) == {
        "report_id": "r1",
        "dossier_code": FIRST,
        "kind": "returned",
        "occurred_at": "2024-10-30T10:40:00+07:00",
        "officer": "lethic.motcua",
        "unit_code": UNIT,
        "note": None,
        "channel": "csv",
        "received_at": "2024-11-06T10:00:00+07:00",
    }
