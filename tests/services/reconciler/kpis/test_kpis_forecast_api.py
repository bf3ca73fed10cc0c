"""``GET /api/v1/kpis``'s ``forecast``, on PostgreSQL and SQLite, worked out by hand.

The clock is TEST_NOW (06/11/2024 10:00, Vietnam time) and no period is given: this month up to
today, 01/11..06/11. The month ends 01/12 00:00. NEW received, all with a due date:

| dossiers | state | counts today | undecided |
|---|---|---|---|
| 250 | finished 04/11, due 12/11 | on time | no |
| LATE_DONE | finished 05/11, due 04/11 | late | no |
| PAST_DUE | open, due 05/11 17:00 | late (past due) | no |
| U1 | open, due 06/11 10:00 (now), held by A | on time | yes |
| U2 | open, due 13/11 17:00, held by B | on time | yes |
| U3, U4 | open, both due 20/11 17:00; U3 held by A, U4 by nobody | on time | yes |
| U5 | open, due 30/11 17:00, held by B | on time | yes |
| AT_MONTH_END | open, due 01/12 00:00 | on time | no (not before the month's end) |
| DECEMBER | open, due 10/12 | on time | no |
| WITHDRAWN | withdrawn 03/11, due 20/11 | on time | no (ended) |

So 258 of 260 on time today: 99.23 % = the best case; all five late: 253/260 = 97.31 %. Late one
by one, the due first: 257/260 = 98.85 %, 256/260 = 98.46 %, 255/260 = 98.08 %, 254/260 =
97.69 % → four decide: U1, U2, then U3 and U4 (same due date) by code — U4's code is the lower.
OTHER received one open dossier due 08/11: 100 % today, 0 % if late, and it decides alone.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reconciler.kpis.forecast import forecast_read
from services.reconciler.kpis.formulas import IsoWeek, Period, trend_weeks
from services.reconciler.kpis.service import Scope, tally_scope, unit_kpis
from shared.db import unit_of_work
from shared.directory import load_directory
from tests.conftest import ADMIN_KEY, OFFICER_KEY, TEST_NOW, bearer
from tests.factories import dossier_code, progress
from tests.services.reconciler.kpis.conftest import NEW, OTHER, PROVINCE, dossier, load, unit, vn

A, B = "tranthib.vpdkdd", "levanc.vpdkdd"
U = {n: dossier_code(300 + n) for n in (1, 2, 5)}
U[3], U[4] = dossier_code(304), dossier_code(303)  # U4's code sorts before U3's
LATE_DONE, PAST_DUE = dossier_code(400), dossier_code(401)
AT_MONTH_END, DECEMBER, WITHDRAWN = dossier_code(402), dossier_code(403), dossier_code(404)
OTHER_OPEN = dossier_code(500, unit=OTHER)


def holder(code: str, officer: str) -> dict[str, Any]:
    """A progress step by ``officer``: the dossier's holder becomes ``officer``."""
    return progress(
        code,
        event_id=f"step-{code}",
        emitted_at=vn(11, 5, 9),
        step_at=vn(11, 5, 9),
        officer=officer,
    )


def month_envelopes() -> list[dict[str, Any]]:
    on_time = [
        dossier(
            dossier_code(n), status=9, received=vn(11, 1 + n % 5), due=vn(11, 12),
            NgayKetThucXuLy="20241104150000",
        )
        for n in range(1, 251)
    ]  # fmt: skip
    return [
        *on_time,
        dossier(
            LATE_DONE, status=9, received=vn(11, 1), due=vn(11, 4), NgayKetThucXuLy="20241105090000"
        ),
        dossier(PAST_DUE, status=4, received=vn(11, 1), due=vn(11, 5, 17)),
        dossier(U[1], status=4, received=vn(11, 4), due=vn(11, 6, 10)),
        dossier(U[2], status=4, received=vn(11, 4), due=vn(11, 13, 17)),
        dossier(U[3], status=4, received=vn(11, 5), due=vn(11, 20, 17)),
        dossier(U[4], status=4, received=vn(11, 5), due=vn(11, 20, 17)),
        dossier(U[5], status=4, received=vn(11, 5), due=vn(11, 30, 17)),
        dossier(AT_MONTH_END, status=4, received=vn(11, 5), due=vn(12, 1, 0)),
        dossier(DECEMBER, status=4, received=vn(11, 5), due=vn(12, 10)),
        dossier(WITHDRAWN, status=7, received=vn(11, 2), due=vn(11, 20), emitted=vn(11, 3, 9)),
        dossier(OTHER_OPEN, status=4, unit=OTHER, received=vn(11, 2), due=vn(11, 8, 17)),
        holder(U[1], A),
        holder(U[2], B),
        holder(U[3], A),
        holder(U[5], B),
    ]


def deciding(code: str, due: datetime, responsible: str | None) -> dict[str, Any]:
    return {"dossier_code": code, "due_at": due.isoformat(), "responsible": responsible}


NEW_FORECAST = {
    "on_time_pct_best": 99.23,
    "on_time_pct_worst": 97.31,
    "deciding": [
        deciding(U[1], vn(11, 6, 10), A),
        deciding(U[2], vn(11, 13, 17), B),
        deciding(U[4], vn(11, 20, 17), None),
        deciding(U[3], vn(11, 20, 17), A),
    ],
}
OTHER_FORECAST = {
    "on_time_pct_best": 100.0,
    "on_time_pct_worst": 0.0,
    "deciding": [deciding(OTHER_OPEN, vn(11, 8, 17), None)],
}
NOTHING: dict[str, Any] = {"on_time_pct_best": None, "on_time_pct_worst": None, "deciding": []}


@pytest.fixture
async def november(engine: AsyncEngine) -> None:
    units = [unit(PROVINCE), unit(NEW, parent=PROVINCE), unit(OTHER, parent=PROVINCE)]
    await load(engine, units=units, envelopes=month_envelopes())


async def items(client: httpx.AsyncClient, key: str, **params: str) -> dict[str, Any]:
    response = await client.get("/api/v1/kpis", params=params, headers=bearer(key))
    assert response.status_code == 200, response.text
    return {item["unit_code"]: item for item in response.json()["items"]}


@pytest.mark.usefixtures("november")
async def test_this_months_forecast_per_unit(client: httpx.AsyncClient) -> None:
    assert vn(11, 6, 10) == TEST_NOW
    found = await items(client, ADMIN_KEY)
    assert found[NEW]["received"] == 260
    assert found[NEW]["on_time_pct"] == 99.23  # today's share: the best case
    assert found[NEW]["forecast"] == NEW_FORECAST
    assert found[OTHER]["on_time_pct"] == 100.0
    assert found[OTHER]["forecast"] == OTHER_FORECAST
    assert found[PROVINCE]["forecast"] == NOTHING
    assert (await items(client, OFFICER_KEY))[NEW]["forecast"] == NEW_FORECAST


@pytest.mark.usefixtures("november")
async def test_a_past_stretch_of_this_month_still_has_its_undecided(
    client: httpx.AsyncClient,
) -> None:
    """01/11..03/11: OTHER's dossier (received 02/11) may still end late before 01/12."""
    found = await items(client, ADMIN_KEY, unit=OTHER, **{"from": "2024-11-01", "to": "2024-11-03"})
    assert found[OTHER]["forecast"] == OTHER_FORECAST


@pytest.mark.usefixtures("november")
async def test_the_boards_pass_forecasts_the_month_beside_its_weeks(engine: AsyncEngine) -> None:
    """The board tallies 12 weeks and forecasts this month with two statements more — the
    month's counts, and the first undecided dossiers of the units at risk, none per unit — and
    its forecasts are the API's."""
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(str(args[2]))

    week = IsoWeek.containing(date(2024, 10, 21))  # W43: the month lies after its 12 weeks
    weeks = [each.period(as_of=TEST_NOW) for each in trend_weeks(week)]
    month = Period(date(2024, 11, 1), date(2024, 11, 6), as_of=TEST_NOW)
    async with unit_of_work(engine, "test") as connection:
        scope = Scope.of(await load_directory(connection), unit=PROVINCE, key_units=None)
        api = await unit_kpis(connection, scope=scope, period=month, forecast=True)
        event.listen(engine.sync_engine, "before_cursor_execute", seen)
        try:
            plain = await tally_scope(connection, scope=scope, periods=weeks, totals=True)
            counted = len(statements)
            tallies = await tally_scope(
                connection, scope=scope, periods=weeks, totals=True, forecast=month
            )
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", seen)
    assert len(statements) - counted == counted + 2  # the same statements, and the month's two
    assert tallies.items() == plain.items()  # the weeks' items: no forecast in them
    forecasts = tallies.forecasts()
    assert list(forecasts) == [PROVINCE, NEW, OTHER]
    assert {unit: forecast_read(found) for unit, found in forecasts.items()} == {
        item["unit_code"]: item["forecast"] for item in api
    }
    assert forecasts[NEW].on_time_pct == 99.23 and forecasts[NEW].undecided == 5
