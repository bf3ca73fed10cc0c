"""``/dossiers/{code}``: a dossier's whole story on one timeline (contract §6).

Thin: the story is :func:`services.reconciler.dossiers.service.story_of` (what the API reads)
and the alerts' :func:`~services.alerts.service.notifications_of_dossier`; this module only
checks the officer's scope and chooses words. Desk officers see the applicant's name masked;
nobody sees the ID number (the story never carries it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse

from services.alerts import service as alerts_service
from services.reconciler.dossiers import service as dossiers_service
from services.workspace.auth import Officer, forbidden, principal_of
from services.workspace.rendering import page
from shared.db import unit_of_work
from shared.directory import load_directory
from shared.vocabulary import (
    REPORT_KIND_LABELS,
    STATUS_NAMES,
    SUBMISSION_CHANNEL_LABELS,
    local_time_text,
)

router = APIRouter(include_in_schema=False)

CODE_LIMIT: Final = 64  # dossiers.code is String(64): a longer code cannot exist
ROLES_SEEING_APPLICANT: Final = frozenset({"handler", "leader"})

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
    entries = dossiers_service.timeline(story.entries, notifications, newest_first=not oldest_first)
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
        },
    )


def _not_found() -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        "Không tìm thấy hồ sơ này: doisoat chưa nhận được thông tin nào về mã hồ sơ đó. / "
        "doisoat has never heard of this dossier.",
    )
