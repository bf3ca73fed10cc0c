"""Fixtures for the KPIs: the API with the KPI router, and loaders that write data the real way.

Dossiers go in through ingest's ``store_events`` (so ``due_at`` is computed as in production);
units, desk reports and discrepancies are inserted as rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from services.app.asgi import create_app
from services.ingest.service import store_events
from shared.clock import VN_TZ, fixed_clock
from shared.config import ApiKey, BaseDoisoatSettings
from shared.db import unit_of_work
from shared.dvcqg import format_thoi_diem
from shared.events import DossierEvent, parse_envelope
from shared.models import Discrepancy, FieldReport, Unit
from tests.conftest import TEST_KEYS, TEST_NOW
from tests.factories import snapshot

PROVINCE = "000.00.00.H08"
NEW = "000.00.12.H08"  # the officer key's unit (tests.conftest.OFFICER_KEY)
OLD = "000.00.11.H08"  # merged into NEW: replaced_by NEW
OTHER = "000.00.99.H08"

PROVINCE_OFFICER_KEY = "officer-province-0123456789"
KPI_KEYS = [
    *TEST_KEYS,
    ApiKey(key=PROVINCE_OFFICER_KEY, role="officer", units=[PROVINCE], account="lanhdao.tinh"),
]


def vn(month: int, day: int, hour: int = 8, minute: int = 0, year: int = 2024) -> datetime:
    """A moment in Vietnam time."""
    return datetime(year, month, day, hour, minute, tzinfo=VN_TZ)


def dossier(
    code: str,
    *,
    status: int,
    received: datetime,
    due: datetime | None,
    unit: str = NEW,
    emitted: datetime | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A snapshot envelope; ``due=None`` leaves ``NgayHenTra`` out."""
    envelope = snapshot(
        code,
        event_id=f"snap-{code}",
        emitted_at=emitted or vn(11, 5, 17),
        status=status,
        unit=unit,
        NgayTiepNhan=format_thoi_diem(received),
        **fields,
    )
    if due is None:
        del envelope["data"]["NgayHenTra"]
    else:
        envelope["data"]["NgayHenTra"] = format_thoi_diem(due)
    return envelope


def desk_report(
    report_id: str, code: str, *, occurred: datetime, unit: str, kind: str = "returned"
) -> dict[str, Any]:
    return {
        "report_id": report_id,
        "dossier_code": code,
        "kind": kind,
        "occurred_at": occurred,
        "officer": "lethic.motcua",
        "unit_code": unit,
        "note": None,
        "channel": "api",
        "received_at": TEST_NOW,
    }


def discrepancy(code: str, kind: str, *, status: str, unit: str) -> dict[str, Any]:
    return {
        "dossier_code": code,
        "kind": kind,
        "severity": "critical",
        "status": status,
        "unit_code": unit,
        "responsible": None,
        "reporter": None,
        "since": vn(10, 20),
        "opened_at": vn(10, 20),
        "resolved_at": TEST_NOW if status == "resolved" else None,
        "details": {},
        "updated_at": TEST_NOW,
    }


def unit(code: str, *, parent: str | None = None, replaced_by: str | None = None) -> dict[str, Any]:
    return {
        "code": code,
        "name": f"Đơn vị {code}",
        "parent_code": parent,
        "replaced_by": replaced_by,
        "updated_at": TEST_NOW,
    }


def _event(envelope: dict[str, Any]) -> DossierEvent:
    parsed = parse_envelope(envelope)
    assert isinstance(parsed, DossierEvent), parsed
    return parsed


async def load(
    engine: AsyncEngine,
    *,
    units: Sequence[dict[str, Any]] = (),
    envelopes: Sequence[dict[str, Any]] = (),
    reports: Sequence[dict[str, Any]] = (),
    discrepancies: Sequence[dict[str, Any]] = (),
) -> None:
    async with unit_of_work(engine, "test_load") as connection:
        if units:
            await connection.execute(insert(Unit), list(units))
        if envelopes:
            result = await store_events(
                connection, [_event(envelope) for envelope in envelopes], now=TEST_NOW
            )
            assert result.count("stored") == len(envelopes), result.outcomes
        if reports:
            await connection.execute(insert(FieldReport), list(reports))
        if discrepancies:
            await connection.execute(insert(Discrepancy), list(discrepancies))


@pytest.fixture
async def client(engine: AsyncEngine, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP API with the KPI router, the test keys (plus a province officer), fixed clock."""
    settings = BaseDoisoatSettings(database_url=database_url, api_keys=KPI_KEYS, _env_file=None)
    app = create_app(settings, engine=engine, clock=fixed_clock(TEST_NOW))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://doisoat.test") as http:
        yield http
