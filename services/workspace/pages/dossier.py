"""``/dossiers/{code}``: a dossier's whole story on one timeline (contract §6), and its official
forms (Thông tư 03/2025/TT-VPCP) as ``.docx``.

Thin: the story is :func:`services.reconciler.dossiers.service.story_of` (what the API reads)
and the alerts' :func:`~services.alerts.service.notifications_of_dossier`; the forms are
:mod:`services.reconciler.forms`. This module only checks the officer's scope and chooses
words. Desk officers see the applicant's name masked; nobody sees the ID number (the story
never carries it).

- ``GET /dossiers/{code}/phieu-kiem-soat.docx``: form 06, the control sheet (one row per
  hand-off), the rows the page shows; anyone who may read the dossier.
- ``GET /dossiers/{code}/xin-loi.docx``: form 04, the apology and request for more time,
  pre-filled, for an overdue dossier (409 otherwise). It is addressed to the applicant by
  name, so only handlers and leaders get it (desk officers: 403).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from docx.document import Document
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from services.alerts import service as alerts_service
from services.reconciler.dossiers import service as dossiers_service
from services.reconciler.forms import service as forms_service
from services.reconciler.forms.apology import apology_document
from services.reconciler.forms.control_sheet import COLUMNS, control_sheet_document
from services.reconciler.forms.links import (
    APOLOGY_DRAFT_ROUTE,
    CONTROL_SHEET_ROUTE,
    apology_draft_path,
    control_sheet_path,
)
from services.reconciler.forms.official import DOCX_MEDIA_TYPE, docx_bytes, working_time_words
from services.reconciler.kpis.service import holder_names
from services.reconciler.lateness import service as lateness_service
from services.reconciler.lateness.formulas import Lateness, StepLateness
from services.workspace.auth import Officer, forbidden, principal_of
from services.workspace.config import WorkspaceSettings
from services.workspace.exports import content_disposition
from services.workspace.rendering import page
from services.workspace.sessions import SignedIn
from shared.calendar import WorkingCalendar
from shared.db import unit_of_work
from shared.directory import Directory, load_directory
from shared.vocabulary import (
    REPORT_KIND_LABELS,
    REWRITTEN_FIELD_LABELS,
    STATUS_NAMES,
    SUBMISSION_CHANNEL_LABELS,
    local_time_text,
)

router = APIRouter(include_in_schema=False)

CODE_LIMIT: Final = 64  # dossiers.code is String(64): a longer code cannot exist
ROLES_SEEING_APPLICANT: Final = frozenset({"handler", "leader"})
_SAFE_NAME: Final = re.compile(r"[^A-Za-z0-9.-]")
Form = TypeVar("Form")

# Wording of this page only (the other pages do not tell a dossier's story).
ENTRY_LABELS: Final = {
    "snapshot": "Hệ thống đồng bộ",
    "step": "Tiến độ xử lý",
    "desk_report": "Một cửa",
    "discrepancy": "Sai lệch",
    "notification": "Thông báo",
}
FIELD_LABELS: Final = {
    "TrangThaiHoSo": "Trạng thái",
    "NgayHenTra": "Ngày hẹn trả",
    "DanhSachHoSoBoSung": "Yêu cầu bổ sung",
    "DanhSachXinLoi": "Văn bản xin lỗi",
    "NgayKetThucXuLy": "Ngày kết thúc xử lý",
    "NgayTra": "Ngày trả kết quả",
    "NgayTuChoi": "Ngày từ chối",
    "DonViXuLy": "Đơn vị xử lý",
    "MaTTHC": "Mã thủ tục",
    "TenTTHC": "Tên thủ tục",
    "TenLinhVuc": "Lĩnh vực",
    "KenhThucHien": "Kênh thực hiện",
    "ChuHoSo": "Chủ hồ sơ",
    "NgayNopHoSo": "Ngày nộp",
    "NgayTiepNhan": "Ngày tiếp nhận",
    "NoiNopHoSo": "Nơi nộp",
    "HoSoCoThanhPhanSoHoa": "Có thành phần số hóa",
    "DanhSachGiayToKetQua": "Giấy tờ kết quả",
}
CHANNELS_OF_SUBMISSION: Final = SUBMISSION_CHANNEL_LABELS
DESK_REPORT_LABELS: Final = REPORT_KIND_LABELS
ACTION_LABELS: Final = {
    "opened": "Phát hiện sai lệch",
    "severity_changed": "Đổi mức độ",
    "handed_over": "Chuyển người chịu trách nhiệm",
    "acknowledged": "Đã xác nhận",
    "resolved": "Đã giải quyết",
}
PURPOSE_LABELS: Final = {
    "opened": "báo sai lệch mới",
    "severity": "báo mức độ tăng",
    "reminder": "nhắc việc",
    "escalation": "báo lãnh đạo (chưa xác nhận đúng hạn)",
    "unreachable": "báo lãnh đạo (không liên lạc được người xử lý)",
    "handover": "báo chuyển người xử lý",
    "resolved": "báo đã giải quyết",
}
NOTICE_CHANNELS: Final = {"email": "Email", "zalo_oa": "Zalo OA", "zalo_zns": "Zalo ZNS"}
NOTICE_OUTCOMES: Final = {
    "sent": "Đã gửi",
    "pending": "Chờ gửi",
    "dead": "Gửi không được",
    "cancelled": "Đã hủy",
}


def shown(field: str, value: Any) -> str:
    """A snapshot field's value as people read it (a date, a status name, a count)."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return local_time_text(value)
    if field == "TrangThaiHoSo" and isinstance(value, int):
        return f"{value} · {STATUS_NAMES.get(value, '?')}"
    if field == "KenhThucHien" and isinstance(value, int):
        return CHANNELS_OF_SUBMISSION.get(value, str(value))
    if field == "HoSoCoThanhPhanSoHoa":
        return {1: "Có", 0: "Không"}.get(value, str(value))
    if field.startswith("DanhSach") and isinstance(value, int):
        return f"{value} mục"
    return str(value)


@router.get("/dossiers/{code}")
async def dossier_page(
    request: Request, code: str, signed_in: Officer, order: str = "newest"
) -> HTMLResponse:
    """The header, the discrepancies as they stand, then every fact and finding by time
    (newest first; ``?order=oldest`` for the story from its beginning)."""
    oldest_first = order == "oldest"
    if len(code) > CODE_LIMIT:
        raise _not_found()
    personal_data = signed_in.officer.role in ROLES_SEEING_APPLICANT
    now: datetime = request.app.state.clock()
    async with unit_of_work(request.app.state.engine, "workspace_dossier") as connection:
        directory = await load_directory(connection)
        story = await dossiers_service.story_of(
            connection, code, directory=directory, personal_data=personal_data
        )
        if story is None:
            raise _not_found()
        if not principal_of(signed_in).may_act_for(story.scope_unit, directory):
            raise forbidden()
        notifications = await alerts_service.notifications_of_dossier(connection, code)
        sheet = await forms_service.control_sheet_of(
            connection, code, now=now, calendar=_calendar(request), directory=directory
        )
        late = await lateness_service.lateness_of(
            connection, code, now=now, calendar=_calendar(request), directory=directory
        )
        charged = await holder_names(connection, _officers(late))
    entries = dossiers_service.timeline(story.entries, notifications, newest_first=not oldest_first)
    overdue = sheet is not None and sheet.overdue
    return page(
        request,
        "dossier.html.j2",
        {
            "story": story,
            "entries": entries,
            "oldest_first": oldest_first,
            "shown": shown,
            "ENTRY_LABELS": ENTRY_LABELS,
            "FIELD_LABELS": FIELD_LABELS,
            "DESK_REPORT_LABELS": DESK_REPORT_LABELS,
            "ACTION_LABELS": ACTION_LABELS,
            "PURPOSE_LABELS": PURPOSE_LABELS,
            "NOTICE_CHANNELS": NOTICE_CHANNELS,
            "NOTICE_OUTCOMES": NOTICE_OUTCOMES,
            "sheet": sheet.form if sheet else None,
            "SHEET_COLUMNS": COLUMNS,
            "control_sheet_link": control_sheet_path(code) if sheet else None,
            "apology_link": apology_draft_path(code) if overdue and personal_data else None,
            "lateness": late if late is not None and late.late else None,
            "overran": _overran(late),
            "charged_names": charged,
            "working_time": working_time_words,
            "rewritten": rewritten,
        },
    )


def rewritten(details: dict[str, Any]) -> dict[str, Any]:
    """A DATES_REWRITTEN finding's details as the page says them: the date's name and the
    moments (the details hold ISO 8601 text)."""

    def moment(key: str) -> str:
        text = details.get(key)
        if not isinstance(text, str):
            return "—"
        try:
            return local_time_text(datetime.fromisoformat(text))
        except ValueError:
            return text

    field = str(details.get("field"))
    return {
        "field": field,
        "label": REWRITTEN_FIELD_LABELS.get(field, field),
        **{key: moment(key) for key in ("before", "before_seen_at", "after", "after_seen_at")},
    }


def _overran(late: Lateness | None) -> list[StepLateness]:
    """The steps that overran their allowance by a minute or more (the control sheet, like
    officers, counts whole minutes)."""
    if late is None:
        return []
    return [step for step in late.steps if step.overrun >= timedelta(minutes=1)]


def _officers(late: Lateness | None) -> set[str]:
    return {step.officer for step in _overran(late) if step.officer}


@router.get(CONTROL_SHEET_ROUTE)
async def control_sheet(request: Request, code: str, signed_in: Officer) -> Response:
    """Form 06 of the dossier: the rows of the page's control sheet, as a ``.docx``."""
    if len(code) > CODE_LIMIT:
        raise _not_found()
    now: datetime = request.app.state.clock()
    async with unit_of_work(request.app.state.engine, "workspace_control_sheet") as connection:
        directory = await load_directory(connection)
        found = _readable(
            await forms_service.control_sheet_of(
                connection, code, now=now, calendar=_calendar(request), directory=directory
            ),
            signed_in,
            directory,
        )
    return _docx(control_sheet_document(found.form), "phieu-kiem-soat", code)


@router.get(APOLOGY_DRAFT_ROUTE)
async def apology_draft(request: Request, code: str, signed_in: Officer) -> Response:
    """Form 04 of an overdue dossier, pre-filled for the handler to complete and have signed."""
    if signed_in.officer.role not in ROLES_SEEING_APPLICANT:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "Văn bản xin lỗi ghi họ tên người nộp hồ sơ: chỉ cán bộ xử lý và lãnh đạo tải "
            "được. / The apology names the applicant: handlers and leaders only.",
        )
    if len(code) > CODE_LIMIT:
        raise _not_found()
    now: datetime = request.app.state.clock()
    async with unit_of_work(request.app.state.engine, "workspace_apology_draft") as connection:
        directory = await load_directory(connection)
        found = _readable(
            await forms_service.apology_of(connection, code, now=now, directory=directory),
            signed_in,
            directory,
        )
    if not found.overdue:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"Hồ sơ {code} hiện không quá hạn trả kết quả (chưa đến hạn, đã có hẹn mới, đã "
            "xử lý xong hoặc Bộ phận Một cửa đã trả): không cần văn bản xin lỗi. / The "
            "dossier is not overdue: no apology is needed.",
        )
    document = apology_document(found.form, now=now, calendar=_calendar(request))
    return _docx(document, "xin-loi", code)


def _readable(
    found: forms_service.Found[Form] | None, signed_in: SignedIn, directory: Directory
) -> forms_service.Found[Form]:
    """The page's checks: 404 for a dossier doisoat never heard of, 403 outside the units."""
    if found is None:
        raise _not_found()
    if not principal_of(signed_in).may_act_for(found.scope_unit, directory):
        raise forbidden()
    return found


def _docx(document: Document, name: str, code: str) -> Response:
    filename = f"{name}-{_SAFE_NAME.sub('', code)}.docx"
    return Response(
        docx_bytes(document),
        media_type=DOCX_MEDIA_TYPE,
        headers={"Content-Disposition": content_disposition(filename)},
    )


def _calendar(request: Request) -> WorkingCalendar:
    """The working-day calendar of the settings (office hours, holidays, local overrides)."""
    settings: WorkspaceSettings = request.app.state.workspace_settings
    return settings.calendar()


def _not_found() -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        "Không tìm thấy hồ sơ này: doisoat chưa nhận được thông tin nào về mã hồ sơ đó. / "
        "doisoat has never heard of this dossier.",
    )
