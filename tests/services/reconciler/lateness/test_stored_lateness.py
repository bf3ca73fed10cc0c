"""Each ended late dossier's lateness, stored when the reconciler judges it (contract §7).

The report sums stored figures while the facts they came from are unchanged, and computes the
others: the hand-worked October of ``test_lateness_api`` must read the same either way, and a
stored figure must never outlive a new step, a new snapshot or a moved date.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reconciler import service
from services.reconciler.lateness.formulas import NO_OFFICER
from shared.calendar import WorkingCalendar
from shared.db import unit_of_work
from shared.models import Dossier, DossierLateness
from tests.conftest import ADMIN_KEY, OFFICER_KEY, TEST_NOW
from tests.factories import default_rule_settings
from tests.services.reconciler.kpis.conftest import NEW, OTHER, dossier, load, vn
from tests.services.reconciler.lateness.test_lateness_api import (
    AN,
    BINH,
    DOSSIERS,
    DUNG,
    EM,
    GIA,
    LAND,
    NEW_LINE,
    OCTOBER,
    OTHER_LINE,
    TRANSFER,
    L,
    apology,
    finished,
    line,
    load_dossiers,
    report,
    step,
)

CALENDAR = WorkingCalendar()


async def judge(engine: AsyncEngine, *codes: str) -> None:
    """One reconcile chunk over ``codes`` (every loaded dossier by default), as the sweep runs."""
    async with unit_of_work(engine, "test_judge") as connection:
        chosen = list(codes) or list((await connection.execute(select(Dossier.code))).scalars())
        await service.reconcile(
            connection,
            chosen,
            now=TEST_NOW,
            calendar=CALENDAR,
            settings=default_rule_settings(CALENDAR),
        )


async def stored(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as connection:
        rows = await connection.execute(select(DossierLateness))
        return {row.dossier_code: row for row in rows}


async def pretend_stored_overrun(engine: AsyncEngine, code: str, hours: float) -> None:
    """Write a figure the arithmetic would never give, to see which path the report took."""
    async with unit_of_work(engine, "test_tamper") as connection:
        await connection.execute(
            update(DossierLateness)
            .where(DossierLateness.dossier_code == code)
            .values(overrun_hours=hours)
        )


@pytest.fixture
async def october_judged(engine: AsyncEngine) -> None:
    await load_dossiers(engine, *DOSSIERS)
    await judge(engine)


@pytest.mark.usefixtures("october_judged")
async def test_judging_stores_the_figures_of_each_ended_late_dossier_only(
    engine: AsyncEngine,
) -> None:
    rows = await stored(engine)
    # L5 is late but open (its lateness grows with the clock); T1 ended on time; T2, X1, X2 open
    assert sorted(rows) == sorted([L[1], L[2], L[3], L[4], L[6]])
    assert (rows[L[1]].overrun_hours, rows[L[1]].charges) == (9.0, {AN: 5.0, BINH: 4.0})
    assert rows[L[2]].charges == {AN: 7.0}  # no allowance: the holder at the due date
    assert rows[L[3]].charges == {DUNG: 6.0}  # chi handed it on in time: nothing charged
    assert rows[L[4]].charges == {DUNG: 1.0, EM: 3.0}
    assert rows[L[6]].charges == {GIA: 12.0}
    assert (rows[L[3]].apology_any, rows[L[3]].apology_late) == (True, True)
    assert (rows[L[1]].apology_any, rows[L[1]].step_count) == (False, 2)


@pytest.mark.usefixtures("october_judged")
async def test_the_report_from_stored_figures_reads_as_the_hand_worked_one(
    client: httpx.AsyncClient,
) -> None:
    answer = await report(client, ADMIN_KEY, **OCTOBER)
    assert (answer["items"], answer["total"]) == ([NEW_LINE, OTHER_LINE], 6)
    by_officer = await report(client, OFFICER_KEY, group_by="officer", **OCTOBER)
    assert by_officer["items"] == [
        line(NO_OFFICER, NO_OFFICER, 1, 27.0, 1, 0),
        line(AN, "Nguyễn Văn An", 2, 12.0, 2, 0),
        line(DUNG, "Lê Văn Dũng", 2, 7.0, 0, 1),
        line(BINH, "Trần Thị Bình", 1, 4.0, 1, 0),
        line(EM, EM, 1, 3.0, 0, 0),
    ]


@pytest.mark.parametrize("group_by", ["unit", "officer", "field", "procedure"])
async def test_stored_and_computed_figures_give_the_same_report(
    client: httpx.AsyncClient, engine: AsyncEngine, group_by: str
) -> None:
    await load_dossiers(engine, *DOSSIERS)
    computed = await report(client, ADMIN_KEY, group_by=group_by, **OCTOBER)
    await judge(engine)
    assert len(await stored(engine)) == 5
    assert await report(client, ADMIN_KEY, group_by=group_by, **OCTOBER) == computed


@pytest.mark.usefixtures("october_judged")
async def test_the_report_reads_stored_figures_while_the_facts_are_unchanged(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await pretend_stored_overrun(engine, L[6], 100.0)
    answer = await report(client, ADMIN_KEY, unit=OTHER, **OCTOBER)
    assert answer["items"][0]["overrun_working_hours"] == 100.0


LATER = vn(11, 6, 9)  # a snapshot emitted after the one loaded (vn(11, 5, 17)), before now


@pytest.mark.parametrize(
    "change",
    ["a step arrives late", "a newer snapshot", "the due date moves"],
)
async def test_a_stored_figure_is_not_used_once_its_dossier_changed(
    client: httpx.AsyncClient, engine: AsyncEngine, change: str
) -> None:
    await load_dossiers(engine, L[6])
    await judge(engine)
    await pretend_stored_overrun(engine, L[6], 100.0)
    received, ended = vn(10, 7, 7, 30), vn(10, 9, 11)
    if change == "a step arrives late":  # an older step, delivered after the judgement
        envelope = step(L[6], 0, GIA, vn(10, 7, 7, 45), vn(10, 7, 8))
    else:
        due = vn(10, 8, 17) if change == "a newer snapshot" else vn(10, 8, 16)
        envelope = dossier(
            L[6], status=9, unit=OTHER, received=received, due=due,
            TenLinhVuc=LAND, **TRANSFER, **finished(ended),
        )  # fmt: skip
        envelope["event_id"] = f"again-{change}"
        envelope["emitted_at"] = LATER.isoformat()
    await load(engine, envelopes=[envelope])
    [item] = (await report(client, ADMIN_KEY, unit=OTHER, **OCTOBER))["items"]
    assert item["overrun_working_hours"] != 100.0  # computed again, not the stored figure
    await judge(engine, L[6])
    assert (await stored(engine))[L[6]].overrun_hours == item["overrun_working_hours"]


async def test_a_dossier_no_longer_late_loses_its_stored_figures(engine: AsyncEngine) -> None:
    await load_dossiers(engine, L[1])
    await judge(engine)
    assert L[1] in await stored(engine)
    # an apology made in time moves the due date past the end (Mon 07/10 09:00): on time
    again = dossier(
        L[1], status=9, received=vn(10, 1, 7, 30), due=vn(10, 4, 17), TenLinhVuc=LAND,
        **TRANSFER, **finished(vn(10, 7, 9)),
        DanhSachXinLoi=apology(vn(10, 3, 9), vn(10, 4, 17), vn(10, 8, 17)),
    )  # fmt: skip
    again["event_id"], again["emitted_at"] = "apology", LATER.isoformat()
    await load(engine, envelopes=[again])
    await judge(engine, L[1])
    assert L[1] not in await stored(engine)


async def test_an_open_late_dossier_is_measured_now_not_stored(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await load_dossiers(engine, L[5])
    await judge(engine)
    assert await stored(engine) == {}
    answer = await report(client, OFFICER_KEY, **OCTOBER)
    assert answer["items"] == [line(NEW, f"Đơn vị {NEW}", 1, 27.0, 1, 0)]
