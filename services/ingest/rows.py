"""What a checked event writes: the dossier columns of a snapshot, the row of a progress step,
and the order that decides which of them is the newest (pure, no I/O).

Both write paths (portable in ``service.py``, PostgreSQL's in ``pg_bulk.py``) build their rows
here, so they cannot disagree on what an event means.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from shared.date_marks import SnapshotDates
from shared.dvcqg import due_date_of, optional_thoi_diem
from shared.events import DossierEvent


def moment(event: DossierEvent, name: str) -> datetime | None:
    """A date field of the event: parsed once when the event was checked."""
    parsed = event.moments.get(name)
    return parsed if parsed is not None else optional_thoi_diem(event.data, name)


def event_columns(event: DossierEvent) -> dict[str, Any]:
    """The event log's row, but for the moment it was received."""
    return {
        "event_id": event.event_id,
        "type": event.type,
        "source": event.source,
        "emitted_at": event.emitted_at,
        "dossier_code": event.dossier_code,
        "data": event.data,
    }


def snapshot_columns(event: DossierEvent) -> dict[str, Any]:
    """The dossier columns a snapshot determines."""
    data = event.data
    digitised = data.get("HoSoCoThanhPhanSoHoa")
    due = due_date_of(data)
    return {
        "code": event.dossier_code,
        "status": data["TrangThaiHoSo"],
        "unit_code": data["DonViXuLy"],
        "procedure_code": data["MaTTHC"],
        "procedure_name": data.get("TenTTHC"),
        "field_name": data.get("TenLinhVuc"),
        "channel": data["KenhThucHien"],
        "digitised": None if digitised is None else digitised == 1,
        "received_at": moment(event, "NgayTiepNhan"),
        "due_at": due.at,
        "due_source_at": due.requested_at,
        "finished_at": moment(event, "NgayKetThucXuLy"),
        "returned_at": moment(event, "NgayTra"),
        "refused_at": moment(event, "NgayTuChoi"),
        "snapshot": data,
        "snapshot_emitted_at": event.emitted_at,
        "snapshot_event_id": event.event_id,
    }


def step_columns(event: DossierEvent) -> dict[str, Any]:
    """The ``progress_steps`` row of a progress event."""
    data = event.data
    return {
        "event_id": event.event_id,
        "dossier_code": event.dossier_code,
        "step_at": moment(event, "ThoiDiemXuLy"),
        "emitted_at": event.emitted_at,
        "officer": data["NguoiXuLy"],
        "status": data["TrangThai"],
        "title": data.get("ChucDanh"),
        "department": data.get("PhongBanXuLy"),
        "content": data.get("NoiDungXuLy"),
        "started_at": moment(event, "NgayBatDau"),
        "deadline_at": moment(event, "NgayKetThucTheoQuyDinh"),
    }


def snapshot_order(row: dict[str, Any]) -> tuple[datetime, str]:
    """Snapshots compete by (``emitted_at``, ``event_id``): the greatest is the state."""
    return (row["snapshot_emitted_at"], row["snapshot_event_id"])


def step_order(row: dict[str, Any]) -> tuple[datetime, datetime, str]:
    """Steps compete by (``ThoiDiemXuLy``, ``emitted_at``, ``event_id``)."""
    return (row["step_at"], row["emitted_at"], row["event_id"])


def _newest(
    rows: Iterable[dict[str, Any]], dossier: str, order: Callable[[dict[str, Any]], Any]
) -> dict[str, dict[str, Any]]:
    """Per dossier (the ``dossier`` column), the greatest row by ``order``."""
    newest: dict[str, dict[str, Any]] = {}
    for row in rows:
        current = newest.get(row[dossier])
        if current is None or order(row) > order(current):
            newest[row[dossier]] = row
    return newest


def newest_snapshots(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest snapshot row of each dossier."""
    return list(_newest(rows, "code", snapshot_order).values())


def step_summary(step_rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per dossier, the newest step's summary columns (the responsible officer follows it)."""
    return [
        {
            "code": code,
            "latest_step_at": row["step_at"],
            "latest_step_emitted_at": row["emitted_at"],
            "latest_step_event_id": row["event_id"],
            "responsible": row["officer"],
        }
        for code, row in _newest(step_rows, "dossier_code", step_order).items()
    ]


# Closing statuses whose first showing ends a dossier for the KPIs (contract §4: 7 and 8 end at
# the snapshot's ``emitted_at``, 9 without ``NgayKetThucXuLy`` likewise).
STATUSES_SEEN = frozenset({7, 8, 9})


def status_seen(snapshot_rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The earliest ``emitted_at`` per (dossier, closing status) among snapshot rows."""
    first: dict[tuple[str, int], datetime] = {}
    for row in snapshot_rows:
        if row["status"] in STATUSES_SEEN:
            key = (row["code"], row["status"])
            if key not in first or row["snapshot_emitted_at"] < first[key]:
                first[key] = row["snapshot_emitted_at"]
    return [
        {"dossier_code": code, "status": status, "first_emitted_at": at}
        for (code, status), at in sorted(first.items())
    ]


def snapshot_dates(row: dict[str, Any]) -> SnapshotDates:
    """The dates a snapshot row claims, for the DATES_REWRITTEN marks."""
    return SnapshotDates(
        emitted_at=row["snapshot_emitted_at"],
        due_at=row["due_at"],
        due_source_at=row["due_source_at"],
        finished_at=row["finished_at"],
        returned_at=row["returned_at"],
    )
