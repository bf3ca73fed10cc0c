"""The forms' facts read from the database (PostgreSQL and SQLite), written the real way.

One dossier, received on Wednesday 5/3/2025 and due on Monday 10/3 at 17:00, passed through
four hands (the worked example of ``test_control_sheet``) and is still open on Tuesday 11/3 at
08:00: overdue, so form 04 is meaningful; form 06 shows its hand-offs.
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.service import store_events
from services.reconciler.forms import service as forms_service
from services.reconciler.forms.apology import ApologyFacts, apology_document
from services.reconciler.forms.control_sheet import ControlSheet, control_sheet_document
from services.reconciler.forms.links import apology_draft_path, control_sheet_path
from services.reconciler.forms.official import Agency, docx_bytes
from services.reconciler.reports import service as reports_service
from services.reconciler.reports.schemas import FieldReportCreate
from shared.calendar import WorkingCalendar
from shared.clock import VN_TZ
from shared.db import unit_of_work
from shared.directory import load_directory
from shared.dvcqg import format_thoi_diem
from shared.events import DossierEvent, parse_envelope
from shared.models import Officer, Unit
from tests.factories import progress, snapshot

PROVINCE = "000.00.00.H08"
UNIT = "000.00.12.H08"
OLD_UNIT = "000.00.30.H08"  # merged into UNIT
CODE = f"{UNIT}-250305-0003"
CALENDAR = WorkingCalendar()
APPLICANT = "Nguyễn Văn An"
ID_NUMBER = "079123456789"
PROCEDURE = "Đăng ký biến động quyền sử dụng đất"
AGENCY = Agency("Chi nhánh VPĐKĐĐ Tuy Phong", "UBND tỉnh Lâm Đồng")


def vn(month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2025, month, day, hour, minute, second, tzinfo=VN_TZ)


NOW = vn(3, 11, 8)
DUE = vn(3, 10, 17)
# (event id, officer, department, start, allowance)
STEPS = [
    ("p1", "an", "Bộ phận Một cửa", vn(3, 5, 8), vn(3, 5, 10)),
    ("p2", "binh", "Phòng Đăng ký", vn(3, 5, 9, 30), vn(3, 6, 14)),
    ("p3", "chi", "Phòng Đăng ký", vn(3, 6, 14, 0, 40), vn(3, 7, 16)),
    ("p4", "dung", "Lãnh đạo", vn(3, 10, 9, 30), vn(3, 10, 16)),
]


async def _directory(engine: AsyncEngine) -> None:
    async with unit_of_work(engine, "test") as connection:
        await connection.execute(
            insert(Unit),
            [
                {
                    "code": code,
                    "name": name,
                    "parent_code": parent,
                    "replaced_by": successor,
                    "updated_at": NOW,
                }
                for code, name, parent, successor in (
                    (PROVINCE, "UBND tỉnh Lâm Đồng", None, None),
                    (UNIT, "Chi nhánh VPĐKĐĐ Tuy Phong", PROVINCE, None),
                    (OLD_UNIT, "Chi nhánh cũ", PROVINCE, UNIT),
                )
            ],
        )
        await connection.execute(
            insert(Officer),
            [
                {
                    "account": account,
                    "full_name": name,
                    "unit_code": UNIT,
                    "role": "handler",
                    "email": None,
                    "zalo_user_id": None,
                    "phone": None,
                    "active": True,
                    "updated_at": NOW,
                }
                for account, name in (("an", "Nguyễn Thị An"), ("binh", "Lê Văn Bình"))
            ],
        )


async def _store(engine: AsyncEngine, code: str = CODE, **fields: Any) -> None:
    """The dossier's snapshot (open, due ``DUE`` unless ``fields`` say otherwise) and steps."""
    envelopes = [
        snapshot(
            code,
            event_id=f"{code}-s1",
            emitted_at=vn(3, 10, 9, 30),
            status=4,
            ChuHoSo=APPLICANT,
            SoGiayToChuHoSo=ID_NUMBER,
            TenTTHC=PROCEDURE,
            NgayTiepNhan=format_thoi_diem(vn(3, 5, 8)),
            NgayHenTra=format_thoi_diem(DUE),
            **fields,
        )
    ]
    for event_id, officer, department, start, allowed in STEPS:
        step = progress(
            code,
            event_id=f"{code}-{event_id}",
            emitted_at=start,
            step_at=start,
            officer=officer,
        )
        step["data"] |= {
            "PhongBanXuLy": department,
            "NgayBatDau": format_thoi_diem(start),
            "NgayKetThucTheoQuyDinh": format_thoi_diem(allowed),
        }
        envelopes.append(step)
    events = [event for event in map(parse_envelope, envelopes) if isinstance(event, DossierEvent)]
    async with unit_of_work(engine, "test") as connection:
        await store_events(connection, events, now=NOW)


async def _desk_report(engine: AsyncEngine, code: str, kind: str = "returned") -> None:
    async with unit_of_work(engine, "test") as connection:
        await reports_service.store_report(
            connection,
            FieldReportCreate(
                report_id=f"desk-{code}",
                dossier_code=code,
                kind=kind,
                occurred_at=NOW - timedelta(hours=1),
                officer="lethic.motcua",
                unit_code=UNIT,
            ),
            channel="api",
            now=NOW,
        )


async def _apology(
    engine: AsyncEngine, code: str = CODE
) -> forms_service.Found[ApologyFacts] | None:
    async with unit_of_work(engine, "test") as connection:
        directory = await load_directory(connection)
        return await forms_service.apology_of(connection, code, now=NOW, directory=directory)


async def _sheet(engine: AsyncEngine, code: str = CODE) -> forms_service.Found[ControlSheet] | None:
    async with unit_of_work(engine, "test") as connection:
        directory = await load_directory(connection)
        return await forms_service.control_sheet_of(
            connection, code, now=NOW, calendar=CALENDAR, directory=directory
        )


async def test_an_overdue_dossiers_apology_is_addressed_to_its_applicant(
    engine: AsyncEngine,
) -> None:
    await _directory(engine)
    await _store(engine)
    found = await _apology(engine)
    assert found is not None
    assert (found.scope_unit, found.overdue) == (UNIT, True)
    facts = found.form
    assert (facts.code, facts.agency, facts.applicant) == (CODE, AGENCY, APPLICANT)
    assert (facts.procedure_name, facts.received_at) == (PROCEDURE, vn(3, 5, 8))
    assert (facts.due.at, facts.due.source) == (DUE, "promised")

    data = docx_bytes(apology_document(facts, now=NOW, calendar=CALENDAR))
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        every_part = b"".join(package.read(name) for name in package.namelist())
    assert APPLICANT.encode() in every_part
    assert ID_NUMBER.encode() not in every_part  # never read, so never written


async def test_the_control_sheet_is_rebuilt_from_the_stored_steps(engine: AsyncEngine) -> None:
    await _directory(engine)
    await _store(engine)
    found = await _sheet(engine)
    assert found is not None and found.overdue
    sheet = found.form
    assert (sheet.agency, sheet.procedure_name, sheet.due_at) == (AGENCY, PROCEDURE, DUE)
    assert [(row.giver_text, row.result_label, row.overrun) for row in sheet.rows] == [
        ("—", "—", timedelta(0)),
        ("Nguyễn Thị An (an), Bộ phận Một cửa", "Trước hạn", timedelta(0)),
        ("Lê Văn Bình (binh), Phòng Đăng ký", "Đúng hạn", timedelta(0)),
        ("chi, Phòng Đăng ký", "Quá hạn", timedelta(hours=3, minutes=30)),
        # Still with "dung", allowed until Monday 16:00: 1 h that day, 1 h on Tuesday morning.
        ("dung, Lãnh đạo", "Quá hạn", timedelta(hours=2)),
    ]
    assert sheet.rows[-1].receiver_text == "(đang giữ hồ sơ)"
    table = control_sheet_document(sheet).tables[1]
    assert len(table.rows) == 1 + len(sheet.rows)


async def test_a_dossier_the_desk_handed_over_needs_no_apology(engine: AsyncEngine) -> None:
    await _directory(engine)
    await _store(engine)
    await _desk_report(engine, CODE)
    found = await _apology(engine)
    assert found is not None and not found.overdue


async def test_an_apology_with_a_new_date_ahead_ends_the_overdue(engine: AsyncEngine) -> None:
    await _directory(engine)
    apology = {"NgayYeuCau": format_thoi_diem(vn(3, 10, 17, 30))}
    apology["NgayHenTraMoi"] = format_thoi_diem(vn(3, 13, 17))
    await _store(engine, DanhSachXinLoi=[apology])
    found = await _apology(engine)
    assert found is not None and not found.overdue
    assert (found.form.due.at, found.form.due.source) == (vn(3, 13, 17), "apology")


async def test_a_merged_units_dossier_is_written_by_its_successor(engine: AsyncEngine) -> None:
    await _directory(engine)
    code = f"{OLD_UNIT}-250305-0001"
    await _store(engine, code, DonViXuLy=OLD_UNIT)
    found = await _apology(engine, code)
    assert found is not None
    assert found.scope_unit == OLD_UNIT  # the page's scope check reads it through replaced_by
    assert found.form.agency == AGENCY


async def test_a_dossier_only_the_desk_reported_has_an_empty_sheet(engine: AsyncEngine) -> None:
    await _directory(engine)
    code = f"{UNIT}-250310-0009"
    await _desk_report(engine, code)
    sheet = await _sheet(engine, code)
    assert sheet is not None
    assert (sheet.scope_unit, sheet.overdue, sheet.form.rows) == (UNIT, False, ())
    apology = await _apology(engine, code)
    assert apology is not None and apology.form.applicant is None


async def test_an_unknown_dossier_has_no_forms(engine: AsyncEngine) -> None:
    await _directory(engine)
    assert await _apology(engine, f"{UNIT}-000000-9999") is None
    assert await _sheet(engine, f"{UNIT}-000000-9999") is None


def test_the_links_are_the_workspace_routes() -> None:
    assert apology_draft_path(CODE) == f"/dossiers/{CODE}/xin-loi.docx"
    assert control_sheet_path(CODE) == f"/dossiers/{CODE}/phieu-kiem-soat.docx"
    assert apology_draft_path("a/b c") == "/dossiers/a%2Fb%20c/xin-loi.docx"
