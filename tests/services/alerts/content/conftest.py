"""Discrepancies as the real rules produce them, one per kind, and the dossier they are about."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.alerts import ack_router
from services.alerts.channels.base import Recipient
from services.alerts.content.wording import alert_content
from services.alerts.links import AckLinks
from services.app.asgi import create_app
from services.reconciler.rules import DeskReport, DossierFacts, evaluate
from shared.calendar import WorkingCalendar
from shared.clock import VN_TZ, fixed_clock
from shared.date_marks import DateMarks
from shared.vocabulary import Kind
from tests.conftest import TEST_NOW, make_settings
from tests.factories import default_rule_settings

UNIT = "000.00.12.H08"
UNIT_NAME = "Văn phòng đăng ký đất đai tỉnh"
CODE = "000.00.12.H08-241021-0042"
PROCEDURE = "Đăng ký biến động quyền sử dụng đất, quyền sở hữu tài sản gắn liền với đất"
APPLICANT = "Nguyễn Văn Ánh"
ID_NUMBER = "079123456789"
HANDLER = "tranthib.vpdkdd"
DESK_OFFICER = "lethic.motcua"
SECRET = "test-secret-for-ack-links-0123456789"
BASE_URL = "https://doisoat.tinh.gov.vn"
RECIPIENT = Recipient(
    account=HANDLER,
    full_name="Đinh Công Tráng",
    email="trang.dc@tinh.gov.vn",
    zalo_user_id="4512903317480012345",
    phone="84912345678",
)


def vn(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2024, month, day, hour, minute, tzinfo=VN_TZ)


DESK_REPORT = DeskReport("r-1", "returned", vn(6, 9, 15), DESK_OFFICER)


def _facts(status: int | None, **fields: Any) -> DossierFacts:
    values: dict[str, Any] = {
        "due_at": vn(30, 17, month=12),
        "finished_at": None,
        "returned_at": None,
        "last_activity_at": vn(6, 8),
        **fields,
    }
    return DossierFacts(code=CODE, status=status, **values)


# kind → (facts, desk reports, now): a situation in which the rules find that kind.
SCENARIOS: dict[Kind, tuple[DossierFacts | None, list[DeskReport], datetime]] = {
    Kind.RETURNED_BUT_OPEN: (_facts(4), [DESK_REPORT], vn(6, 12)),
    Kind.TIME_MISMATCH: (_facts(10, returned_at=vn(6, 16)), [DESK_REPORT], vn(6, 17)),
    Kind.STATUS_CONFLICT: (_facts(8), [DESK_REPORT], vn(6, 12)),
    Kind.NOT_IN_SYSTEM: (None, [DESK_REPORT], vn(6, 12)),
    Kind.OVERDUE_NO_APOLOGY: (
        _facts(4, due_at=vn(5, 17), last_activity_at=vn(5, 10)),
        [],
        vn(6, 10),
    ),
    Kind.DUE_SOON: (_facts(4, due_at=vn(6, 16)), [], vn(6, 10)),
    Kind.STALLED: (_facts(4, last_activity_at=vn(28, 9, month=10)), [], vn(6, 10)),
    Kind.DATES_REWRITTEN: (
        _facts(
            4,
            snapshot_at=vn(6, 9),
            date_marks=DateMarks(base_due_at=vn(29, 17, month=12), base_seen_at=vn(1, 9)),
        ),
        [],
        vn(6, 10),
    ),
}


def discrepancy(kind: Kind, ident: int = 42, code: str = CODE, **overrides: Any) -> dict[str, Any]:
    """A discrepancy row (as ``dict(row._mapping)``) for what the rules find in the scenario."""
    facts, reports, now = SCENARIOS[kind]
    found = evaluate(
        facts, reports, now=now, calendar=WorkingCalendar(), settings=default_rule_settings()
    )
    [finding] = [f for f in found if f.kind == kind]
    row = {
        "id": ident,
        "dossier_code": code,
        "kind": finding.kind.value,
        "severity": finding.severity.value,
        "status": "open",
        "unit_code": UNIT,
        "responsible": HANDLER,
        "reporter": finding.details.get("officer"),
        "since": finding.since,
        "opened_at": now - timedelta(minutes=1),
        "acknowledged_at": None,
        "acknowledged_by": None,
        "resolved_at": None,
        "resolution": None,
        "details": finding.details,
        "updated_at": now,
    }
    return row | overrides


def dossier(
    code: str = CODE,
    *,
    applicant: str = APPLICANT,
    id_number: str = ID_NUMBER,
    procedure: str = PROCEDURE,
    status: int = 4,
) -> dict[str, Any]:
    """A dossier row as the planner reads it (with the snapshot's personal fields)."""
    return {
        "code": code,
        "procedure_name": procedure,
        "status": status,
        "due_at": vn(30, 17, month=12),
        "snapshot": {
            "MaHoSo": code,
            "TenTTHC": procedure,
            "ChuHoSo": applicant,
            "SoGiayToChuHoSo": id_number,
            "TrangThaiHoSo": status,
        },
    }


def content(kind: Kind, ident: int = 42, code: str = CODE, **dossier_fields: Any) -> dict[str, Any]:
    return alert_content(
        discrepancy=discrepancy(kind, ident, code),
        dossier=None if kind == Kind.NOT_IN_SYSTEM else dossier(code, **dossier_fields),
        unit_name=UNIT_NAME,
    )


def ack_links(clock: Any = None) -> AckLinks:
    if clock is None:
        return AckLinks(SECRET, BASE_URL, timedelta(days=7))
    return AckLinks(SECRET, BASE_URL, timedelta(days=7), clock=clock)


@pytest.fixture
async def ack_client(engine: AsyncEngine, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app with the ack router mounted (as the lead will in ``create_app``)."""
    app = create_app(make_settings(database_url), engine=engine, clock=fixed_clock(TEST_NOW))
    if not any(getattr(route, "path", None) == "/ack/{token}" for route in app.routes):
        app.include_router(ack_router.router)
    app.state.ack_links = ack_links()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://doisoat.test") as http:
        yield http
