"""``/board``: the leaders' weekly review (contract §6), and each of its tables as ``.xlsx``.

A leader sees their unit's whole subtree (``?unit=`` narrows it to a unit of it; anything else
is 403), for an ISO week (``?week=YYYY-Www``, by default this week in Vietnam time). Every
figure comes from :mod:`services.reconciler.kpis.review`, whose tallies are those of
``GET /api/v1/kpis``: a unit's row is the API's item for Monday..Sunday, and the cards are one
tally fed with every row of the subtree (for a unit without sub-units, that unit's item).
"Dự báo tháng này" is each unit's ``forecast`` of ``GET /api/v1/kpis`` without ``from``/``to``
(this month up to today), whatever the week shown, tallied in the same pass as the weeks.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconciler.kpis import review
from services.reconciler.kpis.forecast import Forecast
from services.reconciler.kpis.formulas import (
    IsoWeek,
    Period,
    PeriodError,
    UnitKpis,
    month_so_far,
    trend_weeks,
)
from services.reconciler.kpis.service import Scope, holder_names, kpi_item, tally_scope
from services.workspace.auth import forbidden, principal_of, require_roles
from services.workspace.exports import XLSX_MEDIA_TYPE, Column, Table, content_disposition, xlsx
from services.workspace.rendering import page
from services.workspace.sessions import SignedIn
from shared.clock import VN_TZ
from shared.db import unit_of_work
from shared.directory import load_directory
from shared.vocabulary import (
    DISCREPANCY_STATUS_LABELS,
    KIND_LABELS,
    KPI_LABELS,
    KPI_TARGETS,
    STATUS_NAMES,
)

router = APIRouter(include_in_schema=False)
Leader = Annotated[SignedIn, Depends(require_roles("leader"))]

LIST_LIMIT: Final = 100  # rows of each list on the page; the export holds up to EXPORT_LIMIT
EXPORT_LIMIT: Final = 10_000
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
FILE_NAMES: Final[Mapping[str, str]] = {
    "units": "don-vi",
    "trend": "xu-huong-12-tuan",
    "late": "qua-han",
    "stalled": "cham-xu-ly",
    "returned_but_open": "da-tra-chua-cap-nhat",
}
UNITS_NOTES: Final = (
    "Đúng hạn: kết thúc ≤ hạn trả (QĐ 766); hồ sơ chưa xong tính đến cuối tuần "
    "(tuần hiện tại: đến thời điểm xem).",
    "Có trên HT: hồ sơ Một cửa báo đã trả / rút mà hệ thống có.",
    "Không hạn: hồ sơ không có ngày hẹn trả (không tính vào tỷ lệ đúng hạn).",
    "Sai lệch đang mở: chưa giải quyết tại thời điểm xem, mọi loại.",
)
_SAFE_NAME = re.compile(r"[^A-Za-z0-9.-]")


@router.get("/board")
async def board(
    request: Request, signed_in: Leader, week: str | None = None, unit: str | None = None
) -> HTMLResponse:
    """The week's cards, per-unit table, 12-week trend and lists, for the leader's subtree."""
    now: datetime = request.app.state.clock()
    chosen = _week(week, now)
    month = month_so_far(now)
    async with unit_of_work(request.app.state.engine, "workspace_board") as connection:
        scope = await _scope(connection, signed_in, unit)
        kpis = await _week_and_month(connection, scope=scope, week=chosen, month=month)
        lists = await review.review_lists(
            connection, scope=scope, at=review.outstanding_at(chosen, now), limit=LIST_LIMIT
        )
        forecasts = kpis.tallies.forecasts()
        names = await review.unit_names(connection, {*kpis.tallies.units, *forecasts, _root(scope)})
        deciding = [each for found in forecasts.values() for each in found.deciding]
        holders = await holder_names(connection, {d.responsible for d in deciding if d.responsible})
    totals = _totals(kpis)
    trend = trend_table(kpis)
    context = {
        "week": chosen,
        "days": _days(chosen),
        "this_week": IsoWeek.containing(now.astimezone(VN_TZ).date()),
        "root": _root(scope),
        "root_name": names.get(_root(scope), ""),
        "own_unit": signed_in.officer.unit_code,
        "cards": cards(totals),
        "totals": totals,
        "open_total": sum(kpis.tallies.total_discrepancies().values()),
        "units": units_table(kpis, names),
        "trend": trend,
        "trend_chart": _chart(trend),
        "lists": [list_table(each) for each in lists.values()],
        "month": (_day(month.first_day), _day(month.last_day), f"{month.last_day:%m/%Y}"),
        "forecast": forecast_rows(forecasts, names, holders),
        "query": {"week": str(chosen), **({"unit": unit.strip()} if unit and unit.strip() else {})},
        "links": _links(chosen, unit, units=kpis.tallies.units, lists=lists),
    }
    return page(request, "board.html.j2", context)


@router.get("/board/export")
async def export(
    request: Request,
    signed_in: Leader,
    table: str,
    week: str | None = None,
    unit: str | None = None,
) -> Response:
    """One table of the board as ``.xlsx``: the rows the page shows (lists: up to 10,000)."""
    if table not in FILE_NAMES and table not in review.REVIEW_KINDS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Không có bảng này. / No such table.")
    now: datetime = request.app.state.clock()
    chosen = _week(week, now)
    async with unit_of_work(request.app.state.engine, "workspace_board_export") as connection:
        scope = await _scope(connection, signed_in, unit)
        names = await review.unit_names(connection, [_root(scope)])
        if table in ("units", "trend"):
            kpis = await review.week_kpis(connection, scope=scope, week=chosen, now=now)
            names |= await review.unit_names(connection, list(kpis.tallies.units))
            built = units_table(kpis, names) if table == "units" else trend_table(kpis)
        else:
            at = review.outstanding_at(chosen, now)
            lists = await review.review_lists(
                connection, scope=scope, at=at, limit=EXPORT_LIMIT, names=(table,)
            )
            built = list_table(lists[table])
    root = _root(scope)
    first, last = _days(chosen)
    heading = f"Giao ban tuần {chosen} ({first}–{last}), {names.get(root, root)}: {built.title}"
    filename = f"giao-ban-{chosen}-{_SAFE_NAME.sub('', root)}-{FILE_NAMES.get(table, table)}.xlsx"
    return Response(
        xlsx(built, heading=heading),
        media_type=XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": content_disposition(filename)},
    )


async def _week_and_month(
    connection: AsyncConnection, *, scope: Scope, week: IsoWeek, month: Period
) -> review.WeekKpis:
    """:func:`review.week_kpis`, with ``month``'s forecast tallied in the same pass."""
    weeks = tuple(trend_weeks(week))
    periods = [each.period(as_of=month.as_of) for each in weeks]
    tallies = await tally_scope(
        connection, scope=scope, periods=periods, totals=True, forecast=month
    )
    return review.WeekKpis(week, weeks, tallies)


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
            "undecided": len(found.undecided),
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


def _links(
    week: IsoWeek, unit: str | None, *, units: Collection[str], lists: Collection[str]
) -> dict[str, Any]:
    """Where the page's links go: other weeks, a unit alone, each table's export."""
    asked = {"unit": unit.strip()} if unit and unit.strip() else {}
    tables = ("units", "trend", *lists)
    return {
        "previous": _url("/board", week=str(week.shifted(-1)), **asked),
        "next": _url("/board", week=str(week.shifted(1)), **asked),
        "this_week": _url("/board", **asked),
        "own": _url("/board", week=str(week)),
        "unit": {code: _url("/board", week=str(week), unit=code) for code in units},
        "export": {
            name: _url("/board/export", week=str(week), **asked, table=name) for name in tables
        },
    }


def _url(path: str, **params: str) -> str:
    return f"{path}?{urlencode(params)}" if params else path


def _week(text: str | None, now: datetime) -> IsoWeek:
    if not text or not text.strip():
        return IsoWeek.containing(now.astimezone(VN_TZ).date())
    try:
        return IsoWeek.parse(text)
    except PeriodError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None


async def _scope(connection: AsyncConnection, signed_in: SignedIn, unit: str | None) -> Scope:
    """The leader's subtree, or the unit of it they asked for (403 outside it)."""
    directory = await load_directory(connection)
    principal = principal_of(signed_in)
    asked = unit.strip() if unit and unit.strip() else signed_in.officer.unit_code
    if not principal.may_act_for(asked, directory):
        raise forbidden()
    return Scope.of(directory, unit=asked, key_units=principal.units)


def _root(scope: Scope) -> str:
    assert scope.root is not None  # a leader's scope is always rooted at a unit
    return scope.root


def _days(week: IsoWeek) -> tuple[str, str]:
    return _day(week.monday), _day(week.sunday)


def _day(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def _totals(kpis: review.WeekKpis) -> UnitKpis:
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
    total = kpi_item("", _totals(kpis), ())
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


def _chart(trend: Table) -> dict[str, Any]:
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
    """A list of dossiers, each linked to its story."""
    columns = (
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
    return Table(
        found.name,
        KIND_LABELS.get(found.kind, found.kind),
        columns,
        _list_rows(found.entries),
        total=found.total,
    )


def _list_rows(entries: Sequence[review.ReviewEntry]) -> list[dict[str, Any]]:
    return [
        {
            "dossier_code": entry.dossier_code,
            "procedure_name": entry.procedure_name,
            "unit_code": entry.unit_code,
            "dossier_status": (
                STATUS_NAMES.get(entry.dossier_status) if entry.dossier_status else None
            ),
            "received_at": entry.received_at,
            "due_at": entry.due_at,
            "since": entry.since,
            "responsible": entry.responsible_name or entry.responsible,
            "status": DISCREPANCY_STATUS_LABELS.get(entry.status, entry.status),
        }
        for entry in entries
    ]
