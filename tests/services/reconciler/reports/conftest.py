"""The API with the field-report router mounted, and helpers to look at what was stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.app.asgi import create_app
from services.reconciler.reports import router as reports_router
from shared.clock import fixed_clock
from shared.db import unit_of_work
from shared.models import FieldReport, ReconcileSchedule
from tests.conftest import DESK_KEY, TEST_NOW, bearer, make_settings

REPORTS_URL = "/api/v1/field-reports"
IMPORT_URL = "/api/v1/field-reports/import"
DESK = bearer(DESK_KEY)


@pytest.fixture
async def reports_client(
    engine: AsyncEngine, database_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    """Like the root ``client``, plus the field-report router (until app.py mounts it)."""
    app = create_app(make_settings(database_url), engine=engine, clock=fixed_clock(TEST_NOW))
    if not any(getattr(route, "path", None) == REPORTS_URL for route in app.routes):
        app.include_router(reports_router.router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://doisoat.test") as http:
        yield http


async def stored_reports(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Every row of ``field_reports``, by ``report_id``."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(FieldReport.__table__).order_by(FieldReport.report_id)
        )
        return [dict(row) for row in rows.mappings()]


async def schedule(engine: AsyncEngine) -> dict[str, datetime]:
    """The reconcile schedule: dossier code → when it is to be judged."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(ReconcileSchedule.dossier_code, ReconcileSchedule.check_at)
        )
        return {code: check_at for code, check_at in rows.all()}


async def clear_reports(engine: AsyncEngine) -> None:
    async with unit_of_work(engine, "test") as connection:
        await connection.execute(delete(FieldReport))
        await connection.execute(delete(ReconcileSchedule))


def register(*lines: str, header: str = "ma_ho_so,loai,thoi_diem,can_bo,don_vi,ghi_chu") -> bytes:
    """A register file: the header and ``lines``, UTF-8, newline-terminated."""
    return ("\n".join([header, *lines]) + "\n").encode("utf-8")


async def import_csv(
    client: httpx.AsyncClient,
    data: bytes,
    *,
    headers: dict[str, str] | None = None,
    multipart: bool = False,
) -> httpx.Response:
    headers = DESK if headers is None else headers
    if multipart:
        files = {"file": ("so-theo-doi.csv", data, "text/csv")}
        return await client.post(IMPORT_URL, files=files, headers=headers)
    return await client.post(
        IMPORT_URL, content=data, headers={**headers, "Content-Type": "text/csv; charset=utf-8"}
    )
