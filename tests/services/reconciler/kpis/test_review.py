"""What the leaders' weekly review reads, on PostgreSQL and SQLite: ISO weeks, the 12-week pass
whose figures are those of ``GET /api/v1/kpis``, and the late/stalled/returned-but-open lists.

The KPI data is October 2024 of ``test_kpis_api`` (figures worked out there by hand). Its ISO
weeks: W40 = 30/09–06/10, W41 = 07/10–13/10, W42 = 14/10–20/10, W43 = 21/10–27/10,
W44 = 28/10–03/11; the clock (TEST_NOW) is Wednesday 06/11/2024 10:00 in W45.
"""

from __future__ import annotations

from datetime import date, datetime
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reconciler.kpis import review
from services.reconciler.kpis.formulas import IsoWeek, Period, PeriodError, trend_weeks
from services.reconciler.kpis.service import Scope, tally_scope, unit_kpis
from shared.clock import VN_TZ
from shared.db import unit_of_work
from shared.directory import load_directory
from shared.models import Officer
from tests.conftest import TEST_NOW
from tests.factories import dossier_code
from tests.services.reconciler.kpis.conftest import (
    NEW,
    OLD,
    OTHER,
    PROVINCE,
    discrepancy,
    dossier,
    load,
    vn,
)
from tests.services.reconciler.kpis.test_kpis_api import DISCREPANCIES, ENVELOPES, REPORTS, UNITS

W40, W41, W44 = IsoWeek(2024, 40), IsoWeek(2024, 41), IsoWeek(2024, 44)
FIGURES = ("received", "on_time_pct", "online_pct", "digitised_pct", "in_system_pct")


# ISO weeks -------------------------------------------------------------------------------------


def test_an_iso_week_runs_monday_to_sunday_in_vietnam_time() -> None:
    week = IsoWeek.parse("2024-W44")
    assert (week.monday, week.sunday) == (date(2024, 10, 28), date(2024, 11, 3))
    period = week.period(as_of=TEST_NOW)
    assert period.start_at == datetime(2024, 10, 28, tzinfo=VN_TZ)
    assert period.end_at == datetime(2024, 11, 4, tzinfo=VN_TZ)
    assert str(week) == "2024-W44"


def test_weeks_cross_years_as_iso_8601_says() -> None:
    assert IsoWeek.containing(date(2024, 12, 30)) == IsoWeek(2025, 1)  # a Monday of 2024
    assert IsoWeek(2025, 1).shifted(-1) == IsoWeek(2024, 52)
    assert IsoWeek(2020, 53).shifted(1) == IsoWeek(2021, 1)  # 2020 had 53 weeks
    weeks = trend_weeks(IsoWeek(2025, 3))
    assert len(weeks) == 12 and weeks[0] == IsoWeek(2024, 44) and weeks[-1] == IsoWeek(2025, 3)
    assert {(later.monday - earlier.monday).days for earlier, later in pairwise(weeks)} == {7}


@pytest.mark.parametrize(
    "text", ["2024-W54", "2025-W53", "2024-44", "2024W44", "24-W01", "0001-W01", ""]
)
def test_a_week_that_is_not_is_refused(text: str) -> None:
    with pytest.raises(PeriodError, match="YYYY-Www"):
        IsoWeek.parse(text)


# The weekly pass -------------------------------------------------------------------------------


async def scope_of(engine: AsyncEngine, root: str) -> Scope:
    async with unit_of_work(engine, "test") as connection:
        return Scope.of(await load_directory(connection), unit=root, key_units=None)


async def api_items(engine: AsyncEngine, root: str, week: IsoWeek) -> dict[str, dict[str, Any]]:
    """What ``GET /api/v1/kpis?unit=root&from=Monday&to=Sunday`` answers (its service call)."""
    scope = await scope_of(engine, root)
    async with unit_of_work(engine, "test") as connection:
        items = await unit_kpis(connection, scope=scope, period=week.period(as_of=TEST_NOW))
    return {item["unit_code"]: item for item in items}


async def board_of(engine: AsyncEngine, root: str, week: IsoWeek) -> review.WeekKpis:
    scope = await scope_of(engine, root)
    async with unit_of_work(engine, "test") as connection:
        return await review.week_kpis(connection, scope=scope, week=week, now=TEST_NOW)


@pytest.fixture
async def october(engine: AsyncEngine) -> None:
    await load(
        engine, units=UNITS, envelopes=ENVELOPES, reports=REPORTS, discrepancies=DISCREPANCIES
    )


@pytest.mark.usefixtures("october")
async def test_each_week_of_the_trend_is_what_the_api_answers_for_that_week(
    engine: AsyncEngine,
) -> None:
    board = await board_of(engine, NEW, W44)
    assert board.weeks == tuple(trend_weeks(W44))
    assert board.tallies.totals is not None
    for week, total in zip(board.weeks, board.tallies.totals, strict=True):
        (item,) = (await api_items(engine, NEW, week)).values()  # NEW has no sub-unit
        figures = total.result()
        assert [getattr(figures, name) for name in FIGURES] == [item[n] for n in FIGURES], week


@pytest.mark.usefixtures("october")
async def test_weeks_measure_open_dossiers_at_their_own_end(engine: AsyncEngine) -> None:
    """By hand. W40 (NEW): D13 (received 30/09 23:59), D1, D2, D3, D4, D6, D7 and D8 = 8;
    D8 has no due date; late only D2 (ended 10/10 > due 09/10) — D4, late in October's
    figures, is measured at the week's end 07/10 00:00 ≤ due 10/10: on time → 6/7 = 85.71 %.
    W44: D5 and D14 (online), both open and not yet due at 04/11 00:00; the desk's R3 (02/11)
    is unknown to the system → in system 0/1."""
    board = await board_of(engine, NEW, W44)
    assert board.tallies.totals is not None
    by_week = dict(zip(board.weeks, (t.result() for t in board.tallies.totals), strict=True))
    w40 = by_week[W40]
    assert (w40.received, w40.with_due_date, w40.on_time, w40.on_time_pct) == (8, 7, 6, 85.71)
    assert (w40.online_pct, w40.digitised_pct, w40.in_system_pct) == (0.0, 100.0, None)
    w44 = by_week[W44]
    assert (w44.received, w44.on_time_pct, w44.online_pct, w44.in_system_pct) == (2, 100, 50, 0)


@pytest.mark.usefixtures("october")
async def test_a_parent_units_rows_are_the_api_items_and_its_total_adds_them_up(
    engine: AsyncEngine,
) -> None:
    board = await board_of(engine, PROVINCE, W41)
    tallies = board.tallies
    assert tallies.items() == list((await api_items(engine, PROVINCE, W41)).values())
    assert sorted(tallies.units) == [PROVINCE, NEW, OTHER]  # OLD is counted under NEW
    assert tallies.totals is not None
    total = tallies.totals[-1]
    assert total.received == sum(t.received for t in tallies.units.values()) == 5
    assert total.on_time == sum(t.on_time for t in tallies.units.values())
    assert total.with_due_date == sum(t.with_due_date for t in tallies.units.values())
    assert total.reported == sum(t.reported for t in tallies.units.values())  # none in two units
    assert tallies.total_discrepancies() == {
        kind: sum(item["active_discrepancies"][kind] for item in tallies.items())
        for kind in tallies.total_discrepancies()
    }


@pytest.mark.usefixtures("october")
async def test_one_pass_of_one_period_is_the_api(engine: AsyncEngine) -> None:
    scope = await scope_of(engine, PROVINCE)
    period = Period(date(2024, 10, 1), date(2024, 10, 31), as_of=TEST_NOW)
    async with unit_of_work(engine, "test") as connection:
        tallies = await tally_scope(connection, scope=scope, periods=[period], totals=True)
        items = await unit_kpis(connection, scope=scope, period=period)
    assert tallies.items() == items
    assert tallies.totals is not None
    assert tallies.totals[0].received == sum(item["received"] for item in items) == 14


# The lists ------------------------------------------------------------------------------------

A, B, C, E, F, G, H = (dossier_code(n) for n in range(21, 28))


def finding(
    code: str,
    kind: str,
    *,
    since: datetime,
    unit_code: str = NEW,
    resolved: datetime | None = None,
    status: str = "open",
    responsible: str | None = None,
) -> dict[str, Any]:
    return {
        **discrepancy(code, kind, status="resolved" if resolved else status, unit=unit_code),
        "since": since,
        "opened_at": since,
        "resolved_at": resolved,
        "responsible": responsible,
    }


@pytest.fixture
async def findings(engine: AsyncEngine) -> None:
    await load(
        engine,
        units=UNITS,
        envelopes=[dossier(A, status=4, received=vn(10, 1), due=vn(10, 10))],
        discrepancies=[
            finding(A, "OVERDUE_NO_APOLOGY", since=vn(10, 10), responsible="tranthib.vpdkdd"),
            finding(B, "OVERDUE_NO_APOLOGY", since=vn(10, 9), resolved=vn(10, 12)),
            finding(C, "OVERDUE_NO_APOLOGY", since=vn(10, 8), resolved=vn(10, 20), unit_code=OLD),
            finding(E, "OVERDUE_NO_APOLOGY", since=vn(10, 15)),
            finding(F, "STALLED", since=vn(10, 1), unit_code=OTHER),
            finding(G, "RETURNED_BUT_OPEN", since=vn(10, 11), status="acknowledged"),
            finding(H, "DUE_SOON", since=vn(10, 9)),
        ],
    )
    async with unit_of_work(engine, "test") as connection:
        await connection.execute(
            insert(Officer).values(
                account="tranthib.vpdkdd", full_name="Trần Thị B", unit_code=NEW,
                role="handler", email=None, zalo_user_id=None, phone=None, active=True,
                updated_at=TEST_NOW,
            )
        )  # fmt: skip


async def lists_of(
    engine: AsyncEngine, root: str, week: IsoWeek, *, limit: int = 100
) -> dict[str, review.ReviewList]:
    scope = await scope_of(engine, root)
    async with unit_of_work(engine, "test") as connection:
        at = review.outstanding_at(week, TEST_NOW)
        return await review.review_lists(connection, scope=scope, at=at, limit=limit)


def codes(found: review.ReviewList) -> list[str]:
    return [entry.dossier_code for entry in found.entries]


@pytest.mark.usefixtures("findings")
async def test_a_past_week_lists_what_was_outstanding_at_its_end(engine: AsyncEngine) -> None:
    """W41 ends 14/10 00:00: A (since 10/10) and C (resolved 20/10, after it) were late then;
    B was resolved on 12/10, E began on 15/10. C was filed under OLD, which NEW took over."""
    lists = await lists_of(engine, NEW, W41)
    assert list(lists) == ["late", "stalled", "returned_but_open", "rewritten"]
    assert codes(lists["late"]) == [C, A]  # oldest first
    assert [entry.unit_code for entry in lists["late"].entries] == [NEW, NEW]
    assert codes(lists["stalled"]) == []  # F belongs to OTHER
    assert codes(lists["returned_but_open"]) == [G]
    first = lists["late"].entries[1]
    assert (first.procedure_name, first.dossier_status) == (
        "Đăng ký biến động quyền sử dụng đất",
        4,
    )
    assert (first.responsible, first.responsible_name) == ("tranthib.vpdkdd", "Trần Thị B")
    assert first.due_at == vn(10, 10)


@pytest.mark.usefixtures("findings")
async def test_the_current_week_lists_what_is_unresolved_now(engine: AsyncEngine) -> None:
    assert review.outstanding_at(IsoWeek(2024, 45), TEST_NOW) is None
    lists = await lists_of(engine, NEW, IsoWeek(2024, 45))
    assert codes(lists["late"]) == [A, E]
    assert [entry.status for entry in lists["returned_but_open"].entries] == ["acknowledged"]


@pytest.mark.usefixtures("findings")
async def test_a_parent_unit_lists_its_whole_subtree_up_to_the_limit(engine: AsyncEngine) -> None:
    lists = await lists_of(engine, PROVINCE, W41, limit=1)
    assert codes(lists["late"]) == [C] and lists["late"].total == 2
    assert codes(lists["stalled"]) == [F] and lists["stalled"].entries[0].unit_code == OTHER
    only = await lists_of(engine, OTHER, W41)
    assert [codes(found) for found in only.values()] == [[], [F], [], []]


@pytest.mark.usefixtures("findings")
async def test_units_are_named_from_the_directory(engine: AsyncEngine) -> None:
    async with unit_of_work(engine, "test") as connection:
        names = await review.unit_names(connection, [NEW, OTHER, "000.99.99.H08"])
        assert await review.unit_names(connection, []) == {}
    assert names == {NEW: f"Đơn vị {NEW}", OTHER: f"Đơn vị {OTHER}"}
