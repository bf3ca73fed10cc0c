"""A dossier's whole story (contract §6): what the dossier page and the API read.

One dossier lives its life here: received, asked for documents (its due date moves), handled,
returned at the desk while the system still says "processing" — so doisoat opens a
discrepancy, tells the handler and the desk, and the handler acknowledges it with a note.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from services.alerts import service as alerts_service
from services.alerts.config import AlertsSettings
from services.alerts.planner import AlertPlanner
from services.ingest.service import store_events
from services.reconciler import queries as reconciler_queries
from services.reconciler.config import ReconcilerSettings
from services.reconciler.dossiers import service as dossiers
from services.reconciler.reports import service as reports_service
from services.reconciler.reports.schemas import FieldReportCreate
from services.reconciler.worker import Reconciler
from shared.clock import VN_TZ
from shared.db import unit_of_work
from shared.directory import load_directory
from shared.dvcqg import DueDate, due_date_of, effective_due_at, format_thoi_diem
from shared.events import DossierEvent, parse_envelope
from shared.models import Officer, Unit
from tests.factories import dossier_code, progress, snapshot

UNIT = "000.00.12.H08"
DESK_UNIT = "000.23.12.H08"
CODE = dossier_code(31)
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=VN_TZ)  # a Wednesday
HANDLER = "tranthib.vpdkdd"
DESK = "lethic.motcua"
ID_NUMBER = "079123456789"
APPLICANT = "Nguyễn Văn An"
ASKED = NOW - timedelta(days=1, hours=2)  # the supplement request's NgayYeuCau
NEW_DUE = NOW + timedelta(days=6)


def _clock() -> datetime:
    return NOW


async def _directory(engine: AsyncEngine) -> None:
    async with unit_of_work(engine, "test") as connection:
        await connection.execute(
            insert(Unit),
            [
                {"code": code, "name": name, "parent_code": None, "replaced_by": None}
                | {"updated_at": NOW}
                for code, name in ((UNIT, "Chi nhánh VPĐKĐĐ Tuy Phong"), (DESK_UNIT, "Xã B"))
            ],
        )
        await connection.execute(
            insert(Officer),
            [
                {
                    "account": account,
                    "full_name": name,
                    "unit_code": UNIT,
                    "role": role,
                    "email": f"{account}@example.gov.vn",
                    "zalo_user_id": None,
                    "phone": None,
                    "active": True,
                    "updated_at": NOW,
                }
                for account, name, role in (
                    (HANDLER, "Trần Thị B", "handler"),
                    (DESK, "Lê Thị C", "desk"),
                    ("phamvand.lanhdao", "Phạm Văn D", "leader"),
                )
            ],
        )


def _events() -> list[DossierEvent]:
    step = progress(
        CODE,
        event_id="p1",
        emitted_at=NOW - timedelta(days=1),
        step_at=NOW - timedelta(days=1),
        officer=HANDLER,
    )
    step["data"]["NgayKetThucTheoQuyDinh"] = format_thoi_diem(NOW + timedelta(days=3))
    envelopes: list[dict[str, Any]] = [
        snapshot(
            CODE,
            event_id="s1",
            emitted_at=NOW - timedelta(days=2),
            status=2,
            ChuHoSo=APPLICANT,
            SoGiayToChuHoSo=ID_NUMBER,
            TenLinhVuc="Đất đai",
            NgayHenTra=format_thoi_diem(NOW + timedelta(days=2)),
        ),
        snapshot(
            CODE,
            event_id="s2",
            emitted_at=NOW - timedelta(days=1),
            status=4,
            ChuHoSo=APPLICANT,
            SoGiayToChuHoSo="079000000001",  # corrected: the story never says so
            TenLinhVuc="Đất đai",
            NgayHenTra=format_thoi_diem(NOW + timedelta(days=2)),
            DanhSachHoSoBoSung=[
                {"NgayYeuCau": format_thoi_diem(ASKED), "NgayHenTraMoi": format_thoi_diem(NEW_DUE)}
            ],
            GhiChuNoiBo="một trường khác",
        ),
        step,
        snapshot(
            dossier_code(32),
            event_id="other",
            emitted_at=NOW - timedelta(days=1),
            NgayHenTra=format_thoi_diem(NOW + timedelta(days=10)),
        ),
    ]
    events = [parse_envelope(envelope) for envelope in envelopes]
    return [event for event in events if isinstance(event, DossierEvent)]


@pytest.fixture
async def lived(engine: AsyncEngine, database_url: str) -> AsyncEngine:
    """The dossier's life up to the handler's acknowledgement."""
    await _directory(engine)
    async with unit_of_work(engine, "test") as connection:
        await store_events(connection, _events(), now=NOW)
        await reports_service.store_report(
            connection,
            FieldReportCreate(
                report_id="desk-1",
                dossier_code=CODE,
                kind="returned",
                occurred_at=NOW - timedelta(hours=2, minutes=5),
                officer=DESK,
                unit_code=UNIT,
                note="Công dân đã nhận <kết quả>",
            ),
            channel="api",
            now=NOW,
        )
    planner = AlertPlanner(
        AlertsSettings(database_url=database_url, smtp_host="127.0.0.1", _env_file=None)
    )
    reconciler = Reconciler(
        ReconcilerSettings(database_url=database_url, _env_file=None),
        engine,
        _clock,
        on_changes=lambda connection, changes, now: planner.on_changes(
            connection, changes, now=now
        ),
    )
    await reconciler.drain()
    async with unit_of_work(engine, "test") as connection:
        (found,) = await reconciler_queries.discrepancies_of(connection, CODE)
        await reconciler_queries.acknowledge(
            connection, found, account=HANDLER, now=NOW + timedelta(minutes=5), note="Đang gọi"
        )
    return engine


async def _story(engine: AsyncEngine, code: str, *, personal_data: bool) -> Any:
    async with unit_of_work(engine, "test") as connection:
        directory = await load_directory(connection)
        return await dossiers.story_of(
            connection, code, directory=directory, personal_data=personal_data
        )


async def test_the_header_says_where_the_due_date_came_from(lived: AsyncEngine) -> None:
    story = await _story(lived, CODE, personal_data=True)
    assert (story.status, story.unit_code, story.unit_name) == (
        4,
        UNIT,
        "Chi nhánh VPĐKĐĐ Tuy Phong",
    )
    assert (story.field_name, story.holder, story.holder_name) == ("Đất đai", HANDLER, "Trần Thị B")
    assert story.due == DueDate(NEW_DUE, "supplement", ASKED)
    assert story.waiting_for_system is None  # HTTP-only ingest: nothing waits
    assert [row.kind for row in story.discrepancies] == ["RETURNED_BUT_OPEN"]


async def test_every_fact_and_finding_is_on_the_timeline(lived: AsyncEngine) -> None:
    story = await _story(lived, CODE, personal_data=True)
    seen = [(entry.source, entry.at) for entry in story.entries]
    assert sorted(source for source, _ in seen) == [
        "desk_report",
        "discrepancy",
        "discrepancy",
        "snapshot",
        "snapshot",
        "step",
    ]
    first, second = (entry for entry in story.entries if entry.source == "snapshot")
    assert first.first and first.status == 2 and first.changes == ()
    assert {change.field: (change.before, change.after) for change in second.changes} == {
        "TrangThaiHoSo": (2, 4),
        "DanhSachHoSoBoSung": (None, 1),
    }
    assert second.other_changes == 1  # GhiChuNoiBo; the ID number is not even counted
    (step,) = (entry for entry in story.entries if entry.source == "step")
    assert (step.officer_name, step.department) == (
        "Trần Thị B",
        "Chi nhánh Văn phòng đăng ký đất đai",
    )
    assert step.allowed_until == NOW + timedelta(days=3)
    (report,) = (entry for entry in story.entries if entry.source == "desk_report")
    assert (report.kind, report.officer_name, report.note) == (
        "returned",
        "Lê Thị C",
        "Công dân đã nhận <kết quả>",
    )
    opened, acknowledged = (entry for entry in story.entries if entry.source == "discrepancy")
    assert (opened.action, opened.actor, opened.severity) == ("opened", None, "critical")
    assert (acknowledged.action, acknowledged.actor_name, acknowledged.note) == (
        "acknowledged",
        "Trần Thị B",
        "Đang gọi",
    )


async def test_who_was_told_comes_from_the_outbox(lived: AsyncEngine) -> None:
    async with unit_of_work(lived, "test") as connection:
        told = await alerts_service.notifications_of_dossier(connection, CODE)
        nobody = await alerts_service.notifications_of_dossier(connection, dossier_code(32))
    assert sorted((n.recipient, n.recipient_name, n.channel) for n in told) == [
        (DESK, "Lê Thị C", "email"),
        (HANDLER, "Trần Thị B", "email"),
    ]
    assert {(n.kind, n.purpose, n.status, n.sent_at) for n in told} == {
        ("RETURNED_BUT_OPEN", "opened", "pending", None)
    }
    assert all(n.at == n.created_at == NOW for n in told)
    assert nobody == []


async def test_the_timeline_reads_newest_first(lived: AsyncEngine) -> None:
    story = await _story(lived, CODE, personal_data=True)
    async with unit_of_work(lived, "test") as connection:
        told = await alerts_service.notifications_of_dossier(connection, CODE)
    newest = dossiers.timeline(story.entries, told)
    assert [entry.at for entry in newest] == sorted((entry.at for entry in newest), reverse=True)
    assert newest[0].source == "discrepancy"  # the acknowledgement, the latest thing
    assert dossiers.timeline(story.entries, told, newest_first=False) == newest[::-1]


async def test_the_applicant_is_masked_unless_asked_and_the_id_number_never_shown(
    lived: AsyncEngine,
) -> None:
    masked = await _story(lived, CODE, personal_data=False)
    whole = await _story(lived, CODE, personal_data=True)
    assert (masked.applicant, whole.applicant) == ("Nguyễn V. An", APPLICANT)
    assert APPLICANT not in repr(masked)
    for story in (masked, whole):
        assert ID_NUMBER not in repr(story) and "079000000001" not in repr(story)
        assert "SoGiayToChuHoSo" not in repr(story)


async def test_a_dossier_known_only_to_the_desk_belongs_to_the_desks_unit(
    engine: AsyncEngine,
) -> None:
    await _directory(engine)
    code = "000.99.99.H08-261125-0001"
    async with unit_of_work(engine, "test") as connection:
        await reports_service.store_report(
            connection,
            FieldReportCreate(
                report_id="desk-2",
                dossier_code=code,
                kind="withdrawn",
                occurred_at=NOW,
                officer=DESK,
                unit_code=DESK_UNIT,
            ),
            channel="api",
            now=NOW,
        )
    story = await _story(engine, code, personal_data=False)
    assert (story.known_to_system, story.status, story.scope_unit) == (False, None, DESK_UNIT)
    assert story.due == DueDate(None, None)
    assert await _story(engine, "000.00.12.H08-000000-9999", personal_data=False) is None


DUE = "20261201170000"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"NgayHenTra": DUE}, ("promised", None)),
        ({}, (None, None)),
        (
            {
                "NgayHenTra": DUE,
                "DanhSachHoSoBoSung": [
                    {"NgayYeuCau": "20261120080000", "NgayHenTraMoi": "20261205170000"}
                ],
                "DanhSachXinLoi": [
                    {"NgayYeuCau": "20261203080000", "NgayHenTraMoi": "20261208170000"}
                ],
            },
            ("apology", "20261203080000"),
        ),
        (
            {
                "NgayHenTra": DUE,
                "DanhSachHoSoBoSung": [
                    {"NgayYeuCau": "20261204080000", "NgayHenTraMoi": "20261210170000"},
                    {"NgayYeuCau": "20261120080000", "NgayHenTraMoi": "20261205170000"},
                ],
                "DanhSachXinLoi": [
                    {"NgayYeuCau": "20261203080000", "NgayHenTraMoi": "20261208170000"}
                ],
            },
            ("supplement", "20261204080000"),
        ),
    ],
)
def test_the_due_date_and_its_source_agree_with_the_effective_due_date(
    payload: dict[str, Any], expected: tuple[str | None, str | None]
) -> None:
    due = due_date_of(payload)
    assert due.at == effective_due_at(payload)
    asked = None if due.requested_at is None else format_thoi_diem(due.requested_at)
    assert (due.source, asked) == expected
