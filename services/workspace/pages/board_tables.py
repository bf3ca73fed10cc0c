"""The tables of ``/board`` (contract §6), built once for the page and for its ``.xlsx`` export.

Each builder turns what :mod:`services.reconciler.kpis.review` read into a
:class:`~services.workspace.exports.Table`: the template draws it, :func:`exports.xlsx` writes
it, so the file a leader downloads holds the rows on the screen. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from services.alerts.content.formatting import moment
from services.reconciler.kpis import review
from services.reconciler.kpis.forecast import Forecast
from services.reconciler.kpis.formulas import UnitKpis
from services.reconciler.kpis.service import kpi_item
from services.workspace.exports import Column, Table
from shared.vocabulary import (
    DISCREPANCY_STATUS_LABELS,
    KIND_LABELS,
    KPI_LABELS,
    KPI_TARGETS,
    REWRITTEN_FIELD_LABELS,
    STATUS_NAMES,
    Kind,
)

KPI_KEYS: Final = ("on_time_pct", "online_pct", "digitised_pct", "in_system_pct")
# Each card's counts: (the part, the whole, what the whole counts).
CARD_COUNTS: Final[Mapping[str, tuple[str, str, str]]] = {
    "on_time_pct": ("on_time", "with_due_date", "hồ sơ có hạn trả"),
    "online_pct": ("online", "received", "hồ sơ tiếp nhận"),
    "digitised_pct": ("digitised", "received", "hồ sơ tiếp nhận"),
    "in_system_pct": ("reported_known", "reported", "hồ sơ Một cửa báo trả/rút"),
}
SHORT_LABELS: Final[Mapping[str, str]] = {
    "on_time_pct": "Đúng hạn",
    "online_pct": "Trực tuyến",
    "digitised_pct": "Số hóa",
    "in_system_pct": "Có trên HT",
}
UNITS_NOTES: Final = (
    "Đúng hạn: kết thúc ≤ hạn trả (QĐ 766); hồ sơ chưa xong tính đến cuối tuần "
    "(tuần hiện tại: đến thời điểm xem).",
    "Có trên HT: hồ sơ Một cửa báo đã trả / rút mà hệ thống có.",
    "Không hạn: hồ sơ không có ngày hẹn trả (không tính vào tỷ lệ đúng hạn).",
    "Sai lệch đang mở: chưa giải quyết tại thời điểm xem, mọi loại.",
)
LIST_COLUMNS: Final = (
    Column("dossier_code", "Mã hồ sơ", "dossier"),
    Column("procedure_name", "Thủ tục"),
    Column("unit_code", "Đơn vị"),
    Column("dossier_status", "Trạng thái hồ sơ"),
    Column("received_at", "Ngày tiếp nhận", "moment"),
    Column("due_at", "Hạn trả", "moment"),
    Column("since", "Phát hiện từ", "moment"),
    Column("responsible", "Người chịu trách nhiệm"),
    Column("status", "Tình trạng sai lệch"),
)
# The rewritten dossiers: which date moved, from what to what, instead of the reception date
# (the table stays readable; the dossier's page has it).
REWRITE_COLUMNS: Final = (
    *(column for column in LIST_COLUMNS if column.key != "received_at"),
    Column("rewritten_field", "Ngày bị sửa"),
    Column("rewritten_before", "Giá trị trước", "moment"),
    Column("rewritten_after", "Sửa thành", "moment"),
)
REWRITE_NOTES: Final = (
    "Ngày bị sửa: hạn trả bị lùi về sau, hoặc ngày kết thúc xử lý / ngày trả bị đưa về trước "
    "so với giá trị doisoat đã ghi nhận, không kèm yêu cầu bổ sung hay văn bản xin lỗi mới "
    "nào giải thích. Phát hiện từ: lúc hệ thống gửi giá trị mới.",
)


def totals_of(kpis: review.WeekKpis) -> UnitKpis:
    """The scope's figures for the chosen week (the last of the trend)."""
    assert kpis.tallies.totals is not None
    return kpis.tallies.totals[-1].result()


def cards(totals: UnitKpis) -> list[dict[str, Any]]:
    """The four QĐ 766 indicators against their targets, with the counts behind each."""
    found = []
    for key in KPI_KEYS:
        part, whole, counted = CARD_COUNTS[key]
        value: float | None = getattr(totals, key)
        target = KPI_TARGETS[key]
        found.append(
            {
                "key": key,
                "label": KPI_LABELS[key],
                "value": value,
                "part": getattr(totals, part),
                "whole": getattr(totals, whole),
                "counted": counted,
                "target": target,
                "met": None if value is None else value >= target,
            }
        )
    return found


def _kpi_columns() -> tuple[Column, ...]:
    return tuple(
        Column(key, SHORT_LABELS[key], "percent", target=KPI_TARGETS[key]) for key in KPI_KEYS
    )


def units_table(kpis: review.WeekKpis, names: Mapping[str, str]) -> Table:
    """One row per unit: the items of ``GET /api/v1/kpis`` for the week, and their total."""
    tallies = kpis.tallies
    rows = [_unit_row(item, names) for item in tallies.items()]
    total = kpi_item("", totals_of(kpis), ())
    footer = {
        **total,
        "unit_code": "Cộng",
        "unit_name": "Toàn phạm vi",
        "active": sum(tallies.total_discrepancies().values()),
    }
    columns = (
        Column("unit_code", "Mã đơn vị", "unit"),
        Column("unit_name", "Tên đơn vị"),
        Column("received", "Tiếp nhận", "count"),
        *_kpi_columns(),
        Column("without_due_date", "Không hạn", "count"),
        Column("active", "Sai lệch đang mở", "count"),
    )
    return Table("units", "Chỉ số theo đơn vị", columns, rows, footer, notes=UNITS_NOTES)


def _unit_row(item: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    return {
        **item,
        "unit_name": names.get(item["unit_code"], ""),
        "active": sum(item["active_discrepancies"].values()),
    }


def trend_table(kpis: review.WeekKpis) -> Table:
    """The scope's totals for each of the 12 weeks ending with the chosen one."""
    assert kpis.tallies.totals is not None
    rows = []
    for week, tally in zip(kpis.weeks, kpis.tallies.totals, strict=True):
        figures = tally.result()
        rows.append(
            {
                "week": str(week),
                "days": f"{week.monday:%d/%m}–{week.sunday:%d/%m}",
                "received": figures.received,
                **{key: getattr(figures, key) for key in KPI_KEYS},
            }
        )
    columns = (
        Column("week", "Tuần"),
        Column("days", "Ngày"),
        Column("received", "Tiếp nhận", "count"),
        *_kpi_columns(),
    )
    return Table("trend", "Xu hướng 12 tuần", columns, rows)


def chart(trend: Table) -> dict[str, Any]:
    """What board.js draws: the trend table's percentages, one line per indicator."""
    return {
        "labels": [str(row["week"]).split("-")[-1] for row in trend.rows],  # W49
        "series": [
            {
                "key": key,
                "label": f"{SHORT_LABELS[key]} (mục tiêu {KPI_TARGETS[key]}%)",
                "target": KPI_TARGETS[key],
                "data": [row[key] for row in trend.rows],
            }
            for key in KPI_KEYS
        ],
    }


def list_table(found: review.ReviewList) -> Table:
    """A list of dossiers, each linked to its story; rewritten ones say which date moved."""
    rewritten = found.kind == Kind.DATES_REWRITTEN
    return Table(
        found.name,
        KIND_LABELS.get(found.kind, found.kind),
        REWRITE_COLUMNS if rewritten else LIST_COLUMNS,
        [_list_row(entry, rewritten=rewritten) for entry in found.entries],
        total=found.total,
        notes=REWRITE_NOTES if rewritten else (),
    )


def _list_row(entry: review.ReviewEntry, *, rewritten: bool) -> dict[str, Any]:
    row = {
        "dossier_code": entry.dossier_code,
        "procedure_name": entry.procedure_name,
        "unit_code": entry.unit_code,
        "dossier_status": STATUS_NAMES.get(entry.dossier_status) if entry.dossier_status else None,
        "received_at": entry.received_at,
        "due_at": entry.due_at,
        "since": entry.since,
        "responsible": entry.responsible_name or entry.responsible,
        "status": DISCREPANCY_STATUS_LABELS.get(entry.status, entry.status),
    }
    return {**row, **rewrite_cells(entry.details)} if rewritten else row


def rewrite_cells(details: Mapping[str, Any]) -> dict[str, str | datetime | None]:
    """A DATES_REWRITTEN's ``details`` (services.reconciler.rewrites) as the board's columns:
    the date's name as the alert says it, and its earlier and new values in Vietnam time."""
    field = str(details.get("field") or "")
    label = REWRITTEN_FIELD_LABELS.get(field, field)
    return {
        "rewritten_field": label[:1].upper() + label[1:] or None,
        "rewritten_before": moment(details.get("before")),
        "rewritten_after": moment(details.get("after")),
    }


def forecast_rows(
    forecasts: Mapping[str, Forecast], names: Mapping[str, str], holders: Mapping[str, str]
) -> list[dict[str, Any]]:
    """One row per unit: today's share, best, worst, and the dossiers that decide the target."""
    return [
        {
            "unit_code": unit,
            "unit_name": names.get(unit, ""),
            "on_time_pct": found.on_time_pct,
            "best": found.on_time_pct_best,
            "worst": found.on_time_pct_worst,
            "undecided": found.undecided,
            "outlook": found.outlook,
            "deciding": [
                {
                    "code": each.dossier_code,
                    "due_at": each.due_at,
                    "holder": holders.get(each.responsible or "", each.responsible),
                }
                for each in found.deciding
            ],
        }
        for unit, found in forecasts.items()
    ]
