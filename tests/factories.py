"""Builders of contract-shaped test data (envelopes as the procedure system sends them)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson

from services.reconciler.config import ReconcilerSettings
from services.reconciler.rules import RuleSettings
from shared.calendar import WorkingCalendar
from shared.clock import VN_TZ
from shared.dvcqg import format_thoi_diem

UNIT = "000.00.12.H08"
BASE_TIME = datetime(2024, 10, 21, 8, 0, tzinfo=VN_TZ)


def dossier_code(number: int, unit: str = UNIT) -> str:
    return f"{unit}-241021-{number:04d}"


def snapshot(
    code: str,
    *,
    event_id: str,
    emitted_at: datetime,
    status: int = 4,
    unit: str = UNIT,
    **fields: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "MaHoSo": code,
        "MaTTHC": "1.004227",
        "TenTTHC": "Đăng ký biến động quyền sử dụng đất",
        "KenhThucHien": 1,
        "NgayTiepNhan": format_thoi_diem(BASE_TIME),
        "NgayHenTra": format_thoi_diem(BASE_TIME + timedelta(days=7)),
        "TrangThaiHoSo": status,
        "DonViXuLy": unit,
        "HoSoCoThanhPhanSoHoa": 1,
    }
    data.update(fields)
    return {
        "event_id": event_id,
        "type": "dossier.snapshot",
        "source": "motcua-tinh",
        "emitted_at": emitted_at.isoformat(),
        "data": data,
    }


def progress(
    code: str,
    *,
    event_id: str,
    emitted_at: datetime,
    step_at: datetime,
    officer: str = "tranthib.vpdkdd",
    status: int = 4,
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "dossier.progress",
        "source": "motcua-tinh",
        "emitted_at": emitted_at.isoformat(),
        "data": {
            "MaHoSo": code,
            "NguoiXuLy": officer,
            "ChucDanh": "Chuyên viên",
            "ThoiDiemXuLy": format_thoi_diem(step_at),
            "PhongBanXuLy": "Chi nhánh Văn phòng đăng ký đất đai",
            "NoiDungXuLy": "Thẩm định hồ sơ",
            "TrangThai": status,
        },
    }


def encode(envelope: dict[str, Any]) -> bytes:
    return orjson.dumps(envelope)


def default_rule_settings(calendar: WorkingCalendar | None = None) -> RuleSettings:
    """The rules' thresholds at the service's defaults (no environment read)."""
    return ReconcilerSettings.model_construct().rule_settings(calendar or WorkingCalendar())
