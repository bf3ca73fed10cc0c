"""The late-dossier accountability of ``/board`` (contract §7, issue 15 point 6): units and
officers by overrun, and the late dossiers per field, for the week shown.

The tables cover the dossiers the KPI row covers — received Monday..Sunday of the week, in the
leader's scope (the codes the merged units replaced included) — measured at the same moment:
the end of the week, or now while it runs. So a dossier is late here exactly when the
"Giải quyết đúng hạn" card counts it late, and a past week reads the same whenever it is opened
(a dossier still open then is charged up to the week's end, not up to today). Every figure is
:func:`services.reconciler.lateness.service.lateness_by`'s, the pass behind
``GET /api/v1/lateness``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconciler.kpis.formulas import IsoWeek
from services.reconciler.kpis.service import Scope
from services.reconciler.lateness.formulas import NO_OFFICER
from services.reconciler.lateness.service import GroupBy, LatenessReport, lateness_by
from services.workspace.exports import Column, Table
from shared.calendar import WorkingCalendar

# The board's accountability tables, by the name their table and export use → how they group.
LATENESS_TABLES: Final[Mapping[str, GroupBy]] = {
    "late_units": "unit",
    "late_officers": "officer",
    "late_fields": "field",
}
FILE_NAMES: Final[Mapping[str, str]] = {
    "late_units": "tre-han-don-vi",
    "late_officers": "tre-han-can-bo",
    "late_fields": "tre-han-linh-vuc",
}
FIGURES: Final = (
    Column("late_dossiers", "Hồ sơ trễ hạn", "count"),
    Column("overrun_working_hours", "Giờ làm việc vượt hạn", "hours"),
    Column("without_apology", "Chưa xin lỗi", "count"),
    Column("late_apology", "Xin lỗi muộn", "count"),
)
COUNTED: Final = ("late_dossiers", "without_apology", "late_apology")
UNITS_NOTES: Final = (
    "Hồ sơ tiếp nhận trong tuần (như bảng chỉ số theo đơn vị), trễ hạn tính đến hết tuần "
    "(tuần hiện tại: đến thời điểm xem): hồ sơ kết thúc sau hạn trả, hoặc đến lúc đó chưa xong "
    "mà đã quá hạn — đúng những hồ sơ không đúng hạn của chỉ số «Giải quyết đúng hạn».",
    "Giờ làm việc vượt hạn: ở mỗi bước xử lý, giờ làm việc từ hạn của bước đến khi chuyển bước "
    "(hồ sơ chưa xong: đến thời điểm tính ở trên); thời gian chờ công dân bổ sung hoặc thực "
    "hiện nghĩa vụ tài chính không tính cho ai. Hồ sơ không bước nào có hạn: cả phần trễ tính "
    "cho người giữ hồ sơ lúc đến hạn.",
    "Chưa xin lỗi: hồ sơ trễ hạn không có văn bản xin lỗi nào. Xin lỗi muộn: văn bản xin lỗi "
    "lập sau hạn trả mà nó xin gia hạn.",
)
OFFICERS_NOTES: Final = (
    "Mỗi cán bộ chịu phần giờ vượt hạn của các bước mình xử lý; một hồ sơ có thể tính cho nhiều "
    "cán bộ, nên bảng này không cộng dồn.",
)


def measured_at(week: IsoWeek, now: datetime) -> datetime:
    """Where the week's lateness is measured: its end, or now while it runs (the KPIs')."""
    return min(week.period(as_of=None).end_at, now)


async def accountability(
    connection: AsyncConnection,
    *,
    scope: Scope,
    week: IsoWeek,
    now: datetime,
    calendar: WorkingCalendar,
    names: Collection[str] = tuple(LATENESS_TABLES),
) -> dict[str, LatenessReport]:
    """The week's late dossiers grouped as each of ``names`` asks (default: all three); units
    and officers labelled with the directory's names, as the API does."""
    return {
        name: await lateness_by(
            connection,
            period=week.period(as_of=now),
            units=scope.source_codes(),
            group_by=LATENESS_TABLES[name],
            now=measured_at(week, now),
            calendar=calendar,
            directory=scope.directory,
        )
        for name in names
    }


def lateness_table(name: str, report: LatenessReport) -> Table:
    """One accountability table, most overrun first (the API's order)."""
    if name == "late_units":
        return units_table(report)
    if name == "late_officers":
        return officers_table(report)
    return fields_table(report)


def units_table(report: LatenessReport) -> Table:
    """Units by overrun, with the scope's total (each late dossier counts in one unit)."""
    rows = [
        {"unit_code": item["key"], "unit_name": _named(item), **_figures(item)}
        for item in report.items
    ]
    columns = (Column("unit_code", "Mã đơn vị", "unit"), Column("unit_name", "Tên đơn vị"))
    footer = {"unit_code": "Cộng", "unit_name": "Toàn phạm vi", **_sums(rows)}
    return Table(
        "late_units",
        "Trễ hạn theo đơn vị",
        (*columns, *FIGURES),
        rows,
        footer if rows else None,
        notes=UNITS_NOTES,
    )


def officers_table(report: LatenessReport) -> Table:
    """Officers by the overrun of their own steps (late dossiers no officer held: one line)."""
    rows = [
        {
            "officer_name": item["label"],
            "account": None if item["key"] == NO_OFFICER else item["key"],
            **_figures(item),
        }
        for item in report.items
    ]
    columns = (Column("officer_name", "Cán bộ"), Column("account", "Tài khoản"))
    return Table(
        "late_officers", "Trễ hạn theo cán bộ", (*columns, *FIGURES), rows, notes=OFFICERS_NOTES
    )


def fields_table(report: LatenessReport) -> Table:
    """Late dossiers per field (``TenLinhVuc``), with the total (one field per dossier)."""
    rows = [{"field_name": item["label"], **_figures(item)} for item in report.items]
    footer = {"field_name": "Cộng", **_sums(rows)}
    return Table(
        "late_fields",
        "Trễ hạn theo lĩnh vực",
        (Column("field_name", "Lĩnh vực"), *FIGURES),
        rows,
        footer if rows else None,
    )


def _named(item: Mapping[str, Any]) -> str:
    """The unit's name, or nothing when the directory does not know it (label = code)."""
    return "" if item["label"] == item["key"] else str(item["label"])


def _figures(item: Mapping[str, Any]) -> dict[str, Any]:
    return {column.key: item[column.key] for column in FIGURES}


def _sums(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    sums: dict[str, Any] = {key: sum(row[key] for row in rows) for key in COUNTED}
    sums["overrun_working_hours"] = round(sum(row["overrun_working_hours"] for row in rows), 2)
    return sums


def hours_text(value: float | None) -> str:
    """``1.234,5``: working hours with Vietnamese separators, at most two decimals."""
    if value is None:
        return "—"
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return text.translate(str.maketrans(",.", ".,"))
