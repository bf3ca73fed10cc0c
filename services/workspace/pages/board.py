"""``/board``: the leaders' weekly review (contract §6), and each of its tables as ``.xlsx``.

A leader sees their unit's whole subtree (``?unit=`` narrows it to a unit of it; anything else
is 403), for an ISO week (``?week=YYYY-Www``, by default this week in Vietnam time). Every
figure comes from :mod:`services.reconciler.kpis.review`, whose tallies are those of
``GET /api/v1/kpis``: a unit's row is the API's item for Monday..Sunday, and the cards are one
tally fed with every row of the subtree (for a unit without sub-units, that unit's item).
"Dự báo tháng này" is each unit's ``forecast`` of ``GET /api/v1/kpis`` without ``from``/``to``
(this month up to today), whatever the week shown, tallied in the same pass as the weeks.
The late-dossier accountability (§7) is ``GET /api/v1/lateness``'s for the week's dossiers
(:mod:`.board_lateness`). The tables themselves are built in :mod:`.board_tables`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Collection, Mapping
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconciler.kpis import review
from services.reconciler.kpis.formulas import IsoWeek, PeriodError, month_so_far
from services.reconciler.kpis.service import Scope, holder_names
from services.reconciler.lateness.service import LatenessReport
from services.workspace.auth import forbidden, principal_of, require_roles
from services.workspace.config import WorkspaceSettings
from services.workspace.exports import XLSX_MEDIA_TYPE, Table, content_disposition, xlsx
from services.workspace.pages import board_cells
from services.workspace.pages import board_lateness as lateness
from services.workspace.pages import board_tables as tables
from services.workspace.rendering import page
from services.workspace.sessions import SignedIn
from shared.clock import VN_TZ
from shared.db import unit_of_work
from shared.directory import load_directory

router = APIRouter(include_in_schema=False)
Leader = Annotated[SignedIn, Depends(require_roles("leader"))]

# Rows of each list on the page, the longest outstanding first: what a weekly meeting goes
# through; the total is shown beside it and the export holds up to EXPORT_LIMIT.
LIST_LIMIT: Final = 50
EXPORT_LIMIT: Final = 10_000
FILE_NAMES: Final[Mapping[str, str]] = {
    "units": "don-vi",
    "trend": "xu-huong-12-tuan",
    "late": "qua-han",
    "stalled": "cham-xu-ly",
    "returned_but_open": "da-tra-chua-cap-nhat",
    "rewritten": "sua-ngay",
    **lateness.FILE_NAMES,
}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9.-]")


@router.get("/board")
async def board(
    request: Request, signed_in: Leader, week: str | None = None, unit: str | None = None
) -> HTMLResponse:
    """The week's cards, per-unit table, 12-week trend, lists and late-dossier accountability,
    for the leader's subtree."""
    now: datetime = request.app.state.clock()
    chosen = _week(week, now)
    month = month_so_far(now)
    engine = request.app.state.engine
    async with unit_of_work(engine, "workspace_board") as connection:
        scope = await _scope(connection, signed_in, unit)

    async def read_kpis() -> review.WeekKpis:
        async with unit_of_work(engine, "workspace_board_kpis") as connection:
            return await review.week_kpis(
                connection,
                scope=scope,
                week=chosen,
                now=now,
                forecast=month,
                stored_max_age=_stored_max_age(request),
            )

    async def read_lists() -> tuple[dict[str, review.ReviewList], dict[str, LatenessReport]]:
        async with unit_of_work(engine, "workspace_board_lists") as connection:
            at = review.outstanding_at(chosen, now)
            lists = await review.review_lists(connection, scope=scope, at=at, limit=LIST_LIMIT)
            late = await lateness.accountability(
                connection, scope=scope, week=chosen, now=now, calendar=request.app.state.calendar
            )
            return lists, late

    # Two read-only transactions at once: the database works on both cores meanwhile.
    kpis, (lists, late) = await asyncio.gather(read_kpis(), read_lists())
    forecasts = kpis.tallies.forecasts()
    deciding = [each for found in forecasts.values() for each in found.deciding]
    async with unit_of_work(engine, "workspace_board_names") as connection:
        names = await review.unit_names(connection, {*kpis.tallies.units, *forecasts, _root(scope)})
        holders = await holder_names(connection, {d.responsible for d in deciding if d.responsible})
    totals = tables.totals_of(kpis)
    trend = tables.trend_table(kpis)
    context = {
        "week": chosen,
        "days": _days(chosen),
        "this_week": IsoWeek.containing(now.astimezone(VN_TZ).date()),
        "root": _root(scope),
        "root_name": names.get(_root(scope), ""),
        "own_unit": signed_in.officer.unit_code,
        "cards": tables.cards(totals),
        "totals": totals,
        "open_total": sum(kpis.tallies.total_discrepancies().values()),
        "units": tables.units_table(kpis, names),
        "trend": trend,
        "trend_chart": tables.chart(trend),
        "lists": [tables.list_table(each) for each in lists.values()],
        "lateness": [lateness.lateness_table(name, found) for name, found in late.items()],
        "cells": board_cells.cells,
        "month": (_day(month.first_day), _day(month.last_day), f"{month.last_day:%m/%Y}"),
        "forecast": tables.forecast_rows(forecasts, names, holders),
        "counted_at": _moment(kpis.counted_at),
        "query": {"week": str(chosen), **({"unit": unit.strip()} if unit and unit.strip() else {})},
        "links": _links(
            chosen,
            unit,
            units={*kpis.tallies.units, *(item["key"] for item in late["late_units"].items)},
            tables=(*lists, *late),
        ),
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
        built: Table
        if table in ("units", "trend"):
            kpis = await review.week_kpis(
                connection,
                scope=scope,
                week=chosen,
                now=now,
                stored_max_age=_stored_max_age(request),
            )
            names |= await review.unit_names(connection, list(kpis.tallies.units))
            built = (
                tables.units_table(kpis, names) if table == "units" else tables.trend_table(kpis)
            )
        elif table in lateness.LATENESS_TABLES:
            found = await lateness.accountability(
                connection,
                scope=scope,
                week=chosen,
                now=now,
                calendar=request.app.state.calendar,
                names=(table,),
            )
            built = lateness.lateness_table(table, found[table])
        else:
            at = review.outstanding_at(chosen, now)
            lists = await review.review_lists(
                connection, scope=scope, at=at, limit=EXPORT_LIMIT, names=(table,)
            )
            built = tables.list_table(lists[table])
    root = _root(scope)
    first, last = _days(chosen)
    heading = f"Giao ban tuần {chosen} ({first}–{last}), {names.get(root, root)}: {built.title}"
    filename = f"giao-ban-{chosen}-{_SAFE_NAME.sub('', root)}-{FILE_NAMES.get(table, table)}.xlsx"
    return Response(
        xlsx(built, heading=heading),
        media_type=XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": content_disposition(filename)},
    )


def _stored_max_age(request: Request) -> timedelta:
    settings: WorkspaceSettings = request.app.state.workspace_settings
    return settings.board_stored_weeks_max_age


def _links(
    week: IsoWeek, unit: str | None, *, units: Collection[str], tables: Collection[str]
) -> dict[str, Any]:
    """Where the page's links go: other weeks, a unit alone, each table's export."""
    asked = {"unit": unit.strip()} if unit and unit.strip() else {}
    exported = ("units", "trend", *tables)
    return {
        "previous": _url("/board", week=str(week.shifted(-1)), **asked),
        "next": _url("/board", week=str(week.shifted(1)), **asked),
        "this_week": _url("/board", **asked),
        "own": _url("/board", week=str(week)),
        "unit": {code: _url("/board", week=str(week), unit=code) for code in units},
        "export": {
            name: _url("/board/export", week=str(week), **asked, table=name) for name in exported
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


def _moment(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M")


def _day(day: date) -> str:
    return day.strftime("%d/%m/%Y")
