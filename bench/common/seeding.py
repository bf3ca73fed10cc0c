"""Rows for ``COPY``, shared by the benchmarks that seed a world of dossiers.

``bench/reconcile.py`` and ``bench/lateness.py`` seed different worlds (a planted million for
the sweep, a province's year for the lateness report) out of the same rows: dossiers, desk
reports, each dossier's date marks (``DATES_REWRITTEN``), events and progress steps. The column
lists live here once; :class:`Copier` sends them in batches and leaves out whatever the migrated
schema does not have, so the same script can seed the revision before a table or column existed
(``bench/compare.py`` runs it there).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

try:
    from services.ingest.marks import COLUMNS as DATE_MARK_COLUMNS
except ImportError:  # a revision before the date marks (bench/compare.py's "before" side)
    DATE_MARK_COLUMNS = ()
from shared.dvcqg import format_thoi_diem

Row = tuple[Any, ...]

DOSSIER_COLUMNS = (
    "code",
    "status",
    "unit_code",
    "procedure_code",
    "procedure_name",
    "field_name",
    "channel",
    "digitised",
    "received_at",
    "due_at",
    "due_source_at",  # migration 0008: NgayYeuCau of the reschedule giving the due date
    "finished_at",
    "returned_at",
    "refused_at",
    "snapshot",
    "snapshot_emitted_at",
    "snapshot_event_id",
    "latest_step_at",
    "responsible",
    *DATE_MARK_COLUMNS,  # migration 0011 (before: the dossier_date_marks table, 0008)
)
NO_MARKS: tuple[None, ...] = (None,) * len(DATE_MARK_COLUMNS)  # a dossier ingested before 0008
REPORT_COLUMNS = (
    "report_id",
    "dossier_code",
    "kind",
    "occurred_at",
    "officer",
    "unit_code",
    "channel",
    "received_at",
)
MARK_COLUMNS = ("dossier_code", *DATE_MARK_COLUMNS)  # the marks' own table, 0008 to 0010
EVENT_COLUMNS = ("event_id", "type", "source", "emitted_at", "dossier_code", "data", "ingested_at")
STEP_COLUMNS = (
    "event_id",
    "dossier_code",
    "step_at",
    "emitted_at",
    "officer",
    "status",
    "title",
    "department",
    "content",
    "started_at",
    "deadline_at",
)
UNIT_COLUMNS = ("code", "name", "parent_code", "replaced_by", "updated_at")
OFFICER_COLUMNS = ("account", "full_name", "unit_code", "role", "email", "active", "updated_at")
STATUS_SEEN_COLUMNS = ("dossier_code", "status", "first_emitted_at")

#: COPY order: a table's rows before the rows that refer to them.
TABLES: dict[str, Sequence[str]] = {
    "units": UNIT_COLUMNS,
    "officers": OFFICER_COLUMNS,
    "dossiers": DOSSIER_COLUMNS,
    "dossier_status_seen": STATUS_SEEN_COLUMNS,
    "dossier_date_marks": MARK_COLUMNS,
    "field_reports": REPORT_COLUMNS,
    "events": EVENT_COLUMNS,
    "progress_steps": STEP_COLUMNS,
}


def marks_row(
    code: str,
    *,
    seen: datetime,
    due: datetime | None,
    source: datetime | None = None,
    finished: datetime | None = None,
    returned: datetime | None = None,
    base_due: datetime | None = None,
    finished_max: datetime | None = None,
) -> Row:
    """What ingest keeps of a dossier whose snapshots all said the same dates, first ``seen``.

    ``base_due`` (the earliest promised ``NgayHenTra``; default ``due``) and ``finished_max``
    (the latest ``NgayKetThucXuLy``; default ``finished``) differ from the dossier's dates only
    where an earlier snapshot said otherwise. A due date set by a reschedule (``source``, its
    ``NgayYeuCau``) keeps the promised date as the base and the new one as the source's.
    """
    promised = base_due if base_due is not None else (None if source is not None else due)
    ended = finished_max if finished_max is not None else finished
    return (
        code,
        promised,
        None if promised is None else seen,
        source,
        due if source is not None else None,
        None if source is None else seen,
        ended,
        None if ended is None else seen,
        returned,
        None if returned is None else seen,
    )


def snapshot_document(
    *,
    code: str,
    status: int,
    unit: str,
    procedure: tuple[str, str, str],  # MaTTHC, TenTTHC, TenLinhVuc
    applicant: str,
    channel: int,
    digitised: bool,
    stamps: Mapping[str, datetime | None],
    reschedules: Mapping[str, Sequence[tuple[datetime, datetime, datetime]]] | None = None,
) -> dict[str, Any]:
    """A DVCQG ``DongBoHoSoMC`` payload as ingest stores it (contract §1).

    ``stamps``: ``NgayTiepNhan``, ``NgayHenTra``, ``NgayKetThucXuLy``…; ``reschedules``: per list
    (``DanhSachXinLoi``, ``DanhSachHoSoBoSung``) entries (``NgayYeuCau``, ``NgayHenTraTruoc``,
    ``NgayHenTraMoi``).
    """
    document: dict[str, Any] = {
        "MaHoSo": code,
        "MaTTHC": procedure[0],
        "TenTTHC": procedure[1],
        "TenLinhVuc": procedure[2],
        "KenhThucHien": channel,
        "ChuHoSo": applicant,
        "TrangThaiHoSo": status,
        "DonViXuLy": unit,
        "HoSoCoThanhPhanSoHoa": int(digitised),
    }
    document |= {name: format_thoi_diem(at) for name, at in stamps.items() if at is not None}
    for name, entries in (reschedules or {}).items():
        document[name] = [
            {
                "NgayYeuCau": format_thoi_diem(asked),
                "NgayHenTraTruoc": format_thoi_diem(before),
                "NgayHenTraMoi": format_thoi_diem(after),
                "LyDo": "Hồ sơ cần xác minh thêm, xin lỗi và hẹn lại ngày trả kết quả.",
            }
            for asked, before, after in entries
        ]
    return document


class Copier:
    """Rows kept per table and sent with ``copy_records_to_table`` every ``batch`` rows.

    :meth:`start` reads which tables and columns the migrated schema has: a table it lacks is
    not seeded (counted in ``skipped``), a column it lacks is left out of every row. Flushing
    follows :data:`TABLES`, so rows referred to are written first.
    """

    def __init__(self, connection: asyncpg.Connection, batch: int = 50_000) -> None:
        self.connection = connection
        self.batch = batch
        self.rows: dict[str, list[Row]] = {table: [] for table in TABLES}
        self.copied: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self._keep: dict[str, list[int] | None] = {}  # kept column indexes; None: all
        self._present: set[str] = set()

    async def start(self) -> None:
        found: dict[str, set[str]] = {}
        for record in await self.connection.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema()"
        ):
            found.setdefault(record["table_name"], set()).add(record["column_name"])
        for table, columns in TABLES.items():
            if table not in found:
                continue
            self._present.add(table)
            kept = [i for i, column in enumerate(columns) if column in found[table]]
            self._keep[table] = None if len(kept) == len(columns) else kept

    def has(self, table: str) -> bool:
        """Whether the schema has ``table`` (after :meth:`start`)."""
        return table in self._present

    def has_column(self, table: str, column: str) -> bool:
        """Whether ``column`` of ``table`` is seeded: the schema has it, and so does this
        revision's row (on a revision before the date marks, the rows have none)."""
        if column not in TABLES[table]:
            return False
        keep = self._keep.get(table)
        return self.has(table) and (keep is None or TABLES[table].index(column) in keep)

    def add(self, table: str, row: Row) -> None:
        self.rows[table].append(row)

    def full(self) -> bool:
        return any(len(rows) >= self.batch for rows in self.rows.values())

    async def flush(self) -> None:
        for table, columns in TABLES.items():
            rows = self.rows[table]
            if not rows:
                continue
            self.rows[table] = []
            if table not in self._present:
                self.skipped[table] += len(rows)
                continue
            keep = self._keep[table]
            if keep is not None:
                columns = [columns[i] for i in keep]
                rows = [tuple(row[i] for i in keep) for row in rows]
            await self.connection.copy_records_to_table(table, records=rows, columns=columns)
            self.copied[table] += len(rows)
