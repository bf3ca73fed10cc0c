"""The words doisoat uses, in one place: discrepancy kinds and severities, their Vietnamese labels,
status names, the KPI targets, and how a moment is written for people and for the API.

Every page, message, report and answer takes its labels from here, so an officer reads the same
word for the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Final

from shared.clock import VN_TZ


class Kind(StrEnum):
    """The discrepancy kinds of contract §4."""

    RETURNED_BUT_OPEN = "RETURNED_BUT_OPEN"
    TIME_MISMATCH = "TIME_MISMATCH"
    STATUS_CONFLICT = "STATUS_CONFLICT"
    NOT_IN_SYSTEM = "NOT_IN_SYSTEM"
    OVERDUE_NO_APOLOGY = "OVERDUE_NO_APOLOGY"
    DUE_SOON = "DUE_SOON"
    DATES_REWRITTEN = "DATES_REWRITTEN"
    STALLED = "STALLED"


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


# Kinds that compare the desk's report with the system (the reporting desk officer is told too).
DESK_KINDS: Final = frozenset(
    {Kind.RETURNED_BUT_OPEN, Kind.TIME_MISMATCH, Kind.STATUS_CONFLICT, Kind.NOT_IN_SYSTEM}
)
# Kinds whose reporting desk officer is a receiver of the alert (contract §3).
REPORTER_TOLD_KINDS: Final = frozenset({Kind.RETURNED_BUT_OPEN, Kind.NOT_IN_SYSTEM})
# Kinds told to the unit's leaders directly (the handler may be the one who edited the dates).
LEADERS_TOLD_KINDS: Final = frozenset({Kind.DATES_REWRITTEN})
# Kinds about the dossier's deadline and progress, not the desk.
DUE_KINDS: Final = frozenset({Kind.OVERDUE_NO_APOLOGY, Kind.DUE_SOON, Kind.STALLED})

SEVERITY_ORDER: Final = (Severity.CRITICAL, Severity.WARNING, Severity.INFO)
SEVERITY_RANK: Final[Mapping[str, int]] = {"info": 0, "warning": 1, "critical": 2}

KIND_LABELS: Final[Mapping[str, str]] = {
    Kind.RETURNED_BUT_OPEN: "Đã trả kết quả nhưng hệ thống chưa cập nhật",
    Kind.TIME_MISMATCH: "Lệch thời điểm trả kết quả",
    Kind.STATUS_CONFLICT: "Trạng thái trái với thực tế tại Bộ phận Một cửa",
    Kind.NOT_IN_SYSTEM: "Hồ sơ chưa có trên hệ thống",
    Kind.OVERDUE_NO_APOLOGY: "Quá hạn, chưa có văn bản xin lỗi",
    Kind.DUE_SOON: "Sắp đến hạn trả kết quả",
    Kind.DATES_REWRITTEN: "Ngày hẹn trả / ngày xử lý bị sửa lại",
    Kind.STALLED: "Chậm xử lý, không có tiến độ",
}
# The dates DATES_REWRITTEN watches (its ``details.field``), as a sentence names them.
REWRITTEN_FIELD_LABELS: Final[Mapping[str, str]] = {
    "NgayHenTra": "ngày hẹn trả kết quả",
    "NgayHenTraMoi": "ngày hẹn trả mới (theo văn bản gia hạn)",
    "NgayKetThucXuLy": "ngày kết thúc xử lý",
    "NgayTra": "ngày trả kết quả",
}
SEVERITY_LABELS: Final[Mapping[str, str]] = {
    Severity.CRITICAL: "Nghiêm trọng",
    Severity.WARNING: "Cảnh báo",
    Severity.INFO: "Thông tin",
}
DISCREPANCY_STATUS_LABELS: Final[Mapping[str, str]] = {
    "open": "Chưa xác nhận",
    "acknowledged": "Đã xác nhận",
    "resolved": "Đã giải quyết",
}

# What the one-stop desk reports (contract §2: ``kind``; the register's ``loai``).
REPORT_KIND_LABELS: Final[Mapping[str, str]] = {
    "returned": "Trả kết quả",
    "withdrawn": "Rút hồ sơ",
}
# KenhThucHien (contract §1).
SUBMISSION_CHANNEL_LABELS: Final[Mapping[int, str]] = {
    1: "Trực tiếp",
    2: "Trực tuyến",
    3: "Bưu chính công ích",
}

# TrangThaiHoSo (contract §1), as the procedure system names them.
STATUS_NAMES: Final[Mapping[int, str]] = {
    1: "Mới đăng ký",
    2: "Được tiếp nhận",
    3: "Không được tiếp nhận",
    4: "Đang xử lý",
    5: "Yêu cầu bổ sung giấy tờ",
    6: "Yêu cầu thực hiện nghĩa vụ tài chính",
    7: "Công dân yêu cầu rút hồ sơ",
    8: "Dừng xử lý",
    9: "Đã xử lý xong",
    10: "Đã trả kết quả",
}

# The province's targets (QĐ 766/QĐ-TTg indicators, contract §4), in percent.
KPI_TARGETS: Final[Mapping[str, int]] = {
    "on_time_pct": 98,
    "online_pct": 50,
    "digitised_pct": 80,
    "in_system_pct": 100,
}
KPI_LABELS: Final[Mapping[str, str]] = {
    "on_time_pct": "Giải quyết đúng hạn",
    "online_pct": "Hồ sơ trực tuyến",
    "digitised_pct": "Hồ sơ có thành phần số hóa",
    "in_system_pct": "Hồ sơ Một cửa có trên hệ thống",
}


def local_iso(moment: datetime | None) -> str | None:
    """ISO 8601 in Vietnam time with its offset: how answers and details show a moment."""
    return None if moment is None else moment.astimezone(VN_TZ).isoformat()


def local_time_text(moment: datetime | None) -> str:
    """``06/11/2024 09:15`` (``dd/MM/yyyy HH:mm``, Vietnam time): how people read a moment."""
    return "" if moment is None else moment.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M")


def percent_text(value: float | None) -> str:
    """``94,4%``: one decimal with a decimal comma; "—" when there is nothing to measure."""
    return "—" if value is None else f"{value:.1f}".replace(".", ",") + "%"


def number_text(value: int) -> str:
    """``12.345``: Vietnamese thousands."""
    return f"{value:,}".replace(",", ".")
