"""The past weeks' stored KPI counts: the board reads them as the live counts would answer, only
while they are fresh, and the reconciler refreshes them — on PostgreSQL and SQLite.

The data is October 2024 of ``test_kpis_api``; the clock (TEST_NOW) is Wednesday 06/11/2024
10:00, in W45: the stored weeks are W33..W44.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reconciler.config import ReconcilerSettings
from services.reconciler.kpis import review, stored
from services.reconciler.kpis.formulas import IsoWeek
from services.reconciler.kpis.service import Scope
from services.reconciler.worker import Reconciler
from shared.clock import fixed_clock
from shared.db import unit_of_work
from shared.directory import load_directory
from shared.models import Dossier, KpiWeek, KpiWeekCount
from tests.conftest import TEST_NOW
from tests.services.reconciler.kpis.conftest import PROVINCE, load
from tests.services.reconciler.kpis.test_kpis_api import (
    DISCREPANCIES,
    ENVELOPES,
    REPORTS,
    UNITS,
    D,
)

W44, W45 = IsoWeek(2024, 44), IsoWeek(2024, 45)
FRESH = timedelta(minutes=15)


@pytest.fixture
async def october(engine: AsyncEngine) -> None:
    await load(
        engine, units=UNITS, envelopes=ENVELOPES, reports=REPORTS, discrepancies=DISCREPANCIES
    )


async def refresh(engine: AsyncEngine, *, at: timedelta = timedelta(0)) -> int:
    async with unit_of_work(engine, "test") as connection:
        directory = await load_directory(connection)
        return await stored.refresh(connection, directory=directory, now=TEST_NOW - at)


async def board(engine: AsyncEngine, week: IsoWeek, *, max_age: timedelta) -> review.WeekKpis:
    async with unit_of_work(engine, "test") as connection:
        scope = Scope.of(await load_directory(connection), unit=PROVINCE, key_units=None)
        return await review.week_kpis(
            connection, scope=scope, week=week, now=TEST_NOW, stored_max_age=max_age
        )


def figures(kpis: review.WeekKpis) -> tuple[object, ...]:
    assert kpis.tallies.totals is not None
    return (
        kpis.tallies.items(),
        [total.result() for total in kpis.tallies.totals],
        kpis.tallies.total_discrepancies(),
    )


@pytest.mark.usefixtures("october")
@pytest.mark.parametrize("week", [W44, W45], ids=["all-stored", "this-week-live"])
async def test_stored_weeks_answer_as_counting_them_live(
    engine: AsyncEngine, week: IsoWeek
) -> None:
    await refresh(engine)
    from_store = await board(engine, week, max_age=FRESH)
    live = await board(engine, week, max_age=timedelta(0))
    assert from_store.counted_at == TEST_NOW and live.counted_at is None
    assert figures(from_store) == figures(live)


@pytest.mark.usefixtures("october")
async def test_the_twelve_weeks_before_this_one_are_stored_and_older_ones_dropped(
    engine: AsyncEngine,
) -> None:
    await refresh(engine, at=timedelta(weeks=3))  # W30..W41, three weeks ago
    await refresh(engine)
    async with unit_of_work(engine, "test") as connection:
        weeks = (await connection.execute(select(KpiWeek.week_start))).scalars().all()
        units = await connection.execute(select(func.count(KpiWeekCount.unit_code.distinct())))
    assert sorted(weeks) == [IsoWeek(2024, n).monday for n in range(33, 45)]
    assert units.scalar_one() > 0


@pytest.mark.usefixtures("october")
async def test_a_change_shows_once_the_weeks_are_counted_again(engine: AsyncEngine) -> None:
    """Between two refreshes the board shows the counts as stored; the next one catches up."""
    await refresh(engine)
    before = await board(engine, W44, max_age=FRESH)
    async with unit_of_work(engine, "test") as connection:
        await connection.execute(update(Dossier).values(channel=2))  # every dossier online
    assert figures(await board(engine, W44, max_age=FRESH)) == figures(before)
    await refresh(engine)
    after = await board(engine, W44, max_age=FRESH)
    assert figures(after) == figures(await board(engine, W44, max_age=timedelta(0)))
    assert figures(after) != figures(before)


@pytest.mark.usefixtures("october")
async def test_weeks_counted_longer_ago_than_allowed_are_counted_live(
    engine: AsyncEngine,
) -> None:
    await refresh(engine, at=timedelta(minutes=20))  # still W33..W44, 20 minutes old
    async with unit_of_work(engine, "test") as connection:
        await connection.execute(update(Dossier).where(Dossier.code == D[4]).values(channel=2))
    stale = await board(engine, W44, max_age=FRESH)
    assert stale.counted_at is None
    assert figures(stale) == figures(await board(engine, W44, max_age=timedelta(0)))
    assert (await board(engine, W44, max_age=timedelta(minutes=30))).counted_at is not None


@pytest.mark.usefixtures("october")
async def test_a_week_counted_before_it_ended_is_not_used(engine: AsyncEngine) -> None:
    """Counted during the week, its open dossiers were measured then, not at the week's end."""
    await refresh(engine)
    async with unit_of_work(engine, "test") as connection:
        await connection.execute(
            update(KpiWeek)
            .where(KpiWeek.week_start == W44.monday)
            .values(counted_at=W44.period(as_of=None).end_at - timedelta(hours=1))
        )
        found = await stored.fresh_counts(
            connection, weeks=[W44], now=W44.period(as_of=None).end_at, max_age=FRESH
        )
    assert found.by_period == {} and found.counted_at is None


@pytest.mark.usefixtures("october")
async def test_the_reconciler_stores_the_past_weeks(engine: AsyncEngine) -> None:
    reconciler = Reconciler(ReconcilerSettings(), engine, fixed_clock(TEST_NOW))
    await reconciler.refresh_kpi_weeks()
    from_store = await board(engine, W44, max_age=FRESH)
    assert from_store.counted_at == TEST_NOW
    assert figures(from_store) == figures(await board(engine, W44, max_age=timedelta(0)))


@pytest.mark.usefixtures("october")
async def test_a_second_reconciler_leaves_weeks_counted_moments_ago(engine: AsyncEngine) -> None:
    """Every 5 minutes by default: within 2.5 minutes of another's count it does not count."""
    first = Reconciler(ReconcilerSettings(), engine, fixed_clock(TEST_NOW))
    await first.refresh_kpi_weeks()
    for minutes, counted_at in ((2, TEST_NOW), (3, TEST_NOW + timedelta(minutes=3))):
        later = fixed_clock(TEST_NOW + timedelta(minutes=minutes))
        await Reconciler(ReconcilerSettings(), engine, later).refresh_kpi_weeks()
        async with unit_of_work(engine, "test") as connection:
            found = await connection.execute(select(func.max(KpiWeek.counted_at)))
        assert found.scalar_one() == counted_at, minutes
