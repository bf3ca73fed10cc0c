"""Facts about DVCQG payloads (``DongBoHoSoMC`` / ``CapNhatTienDoHoSoMC``): codes, dates, due dates.

Pure functions, no I/O: used by ingest when writing and by the reconciler when judging.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import IntEnum
from functools import lru_cache
from typing import Any, Literal

from shared.clock import VN_TZ

THOI_DIEM_FORMAT = "%Y%m%d%H%M%S"


class Status(IntEnum):
    """``TrangThaiHoSo``, the DVCQG dossier status codes."""

    SUBMITTED = 1  # Mới đăng ký
    RECEIVED = 2  # Được tiếp nhận
    REFUSED = 3  # Không được tiếp nhận
    PROCESSING = 4  # Đang xử lý
    AWAITING_DOCUMENTS = 5  # Yêu cầu bổ sung giấy tờ
    AWAITING_PAYMENT = 6  # Yêu cầu thực hiện nghĩa vụ tài chính
    WITHDRAWN = 7  # Công dân yêu cầu rút hồ sơ
    STOPPED = 8  # Dừng xử lý
    FINISHED = 9  # Đã xử lý xong
    RETURNED = 10  # Đã trả kết quả


OPEN_STATUSES = frozenset({1, 2, 4, 5, 6})
WAITING_ON_APPLICANT = frozenset({5, 6})
TERMINAL_STATUSES = frozenset({3, 7, 8})

SNAPSHOT_DATE_FIELDS = (
    "NgayNopHoSo",
    "NgayTiepNhan",
    "NgayHenTra",
    "NgayKetThucXuLy",
    "NgayTra",
    "NgayTuChoi",
)
STEP_DATE_FIELDS = ("ThoiDiemXuLy", "NgayBatDau", "NgayKetThucTheoQuyDinh")
RESCHEDULE_LISTS = ("DanhSachHoSoBoSung", "DanhSachXinLoi")
RESCHEDULE_DATE_FIELDS = ("NgayYeuCau", "NgayHenTraTruoc", "NgayHenTraMoi", "NgayHoanThanhBoSung")


# Vietnam has kept UTC+7 without daylight saving since 1975: a fixed offset is exact for every
# date the procedure systems hold, and far cheaper than a zoneinfo lookup on the hot path.
VN_OFFSET = timezone(timedelta(hours=7), "+07")


@lru_cache(maxsize=16384)
def parse_thoi_diem(value: str) -> datetime:
    """``yyyyMMddHHmmss`` in Asia/Ho_Chi_Minh → aware datetime. Raises ValueError if impossible.

    Ingest parses several of these per event, and a dossier's snapshots repeat the same dates:
    the results (immutable) are cached, and a miss costs one C-level ``fromisoformat``.
    """
    if len(value) != 14 or not value.isdigit() or not value.isascii():
        raise ValueError(f"{value!r} is not yyyyMMddHHmmss")
    year = int(value[0:4])
    if not 1900 <= year <= 2999:  # typos; year 1 would not even fit UTC storage
        raise ValueError(f"{value!r}: year {year} is out of range")
    try:
        moment = datetime.fromisoformat(f"{value[:8]}T{value[8:]}")
    except ValueError as error:
        raise ValueError(f"{value!r} is not a real moment: {error}") from None
    return moment.replace(tzinfo=VN_OFFSET)


def format_thoi_diem(moment: datetime) -> str:
    """Aware datetime → ``yyyyMMddHHmmss`` in Asia/Ho_Chi_Minh."""
    return moment.astimezone(VN_TZ).strftime(THOI_DIEM_FORMAT)


def optional_thoi_diem(payload: Mapping[str, Any], field: str) -> datetime | None:
    value = payload.get(field)
    return parse_thoi_diem(value) if isinstance(value, str) else None


def parse_dates(
    payload: Mapping[str, Any], fields: Iterable[str]
) -> tuple[dict[str, datetime], list[str]]:
    """The top-level date ``fields`` parsed, and the names of all that are not real moments
    (reschedule list entries included): one pass, so ingest never parses a date twice."""
    moments: dict[str, datetime] = {}
    bad: list[str] = []
    for name in fields:
        value = payload.get(name)
        if isinstance(value, str):
            try:
                moments[name] = parse_thoi_diem(value)
            except ValueError:
                bad.append(name)
    for list_name in RESCHEDULE_LISTS:
        entries = payload.get(list_name)
        if isinstance(entries, list):
            for index, entry in enumerate(entries):
                if isinstance(entry, dict):
                    for name in RESCHEDULE_DATE_FIELDS:
                        value = entry.get(name)
                        if isinstance(value, str):
                            try:
                                parse_thoi_diem(value)
                            except ValueError:
                                bad.append(f"{list_name}[{index}].{name}")
    return moments, bad


def effective_due_at(
    snapshot: Mapping[str, Any], *, promised: datetime | None = None
) -> datetime | None:
    """Contract §1: the latest reschedule's new date (by ``NgayYeuCau``), else ``NgayHenTra``.

    Supplement requests and apology letters both move the date; ties on ``NgayYeuCau`` go to
    the later new date, so the answer never depends on list order.
    """
    latest = _latest_reschedule(snapshot)
    if latest is not None:
        return parse_thoi_diem(latest[2])
    if promised is not None:  # ``NgayHenTra`` already parsed by the caller
        return promised
    return optional_thoi_diem(snapshot, "NgayHenTra")


def _latest_reschedule(snapshot: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(list name, ``NgayYeuCau``, ``NgayHenTraMoi``) of the entry that sets the due date."""
    latest: tuple[str, str] | None = None
    origin = ""
    for list_name in RESCHEDULE_LISTS:
        for entry in snapshot.get(list_name) or ():
            candidate = (entry["NgayYeuCau"], entry["NgayHenTraMoi"])
            if latest is None or candidate > latest:
                latest, origin = candidate, list_name
    return None if latest is None else (origin, *latest)


DueSource = Literal["promised", "supplement", "apology"]


@dataclass(frozen=True, slots=True)
class DueDate:
    """The effective due date and where it came from, for people who must trust it."""

    at: datetime | None
    source: DueSource | None  # None: the dossier has no due date
    requested_at: datetime | None = None  # the ``NgayYeuCau`` of the entry that moved it


def due_date_of(snapshot: Mapping[str, Any]) -> DueDate:
    """:func:`effective_due_at` with its origin: ``NgayHenTra``, a supplement request or an
    apology letter (and the day it was made)."""
    latest = _latest_reschedule(snapshot)
    if latest is None:
        promised = optional_thoi_diem(snapshot, "NgayHenTra")
        return DueDate(promised, None if promised is None else "promised")
    list_name, requested, new_date = latest
    source: DueSource = "supplement" if list_name == "DanhSachHoSoBoSung" else "apology"
    return DueDate(parse_thoi_diem(new_date), source, parse_thoi_diem(requested))


def agency_of_dossier_code(code: str) -> str:
    """The agency prefix of a dossier code ``{agency}-{yyMMdd}-{NNNN}`` (best effort)."""
    return code.split("-", 1)[0]
