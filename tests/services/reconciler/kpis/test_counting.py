"""The database counts the KPIs exactly as the formulas do, on PostgreSQL and SQLite.

:func:`tally_scope` has the database count (``GROUP BY`` per table); :class:`KpiTally` is the
row-by-row statement of contract §4. For any dossiers — every status, stamps present or not,
first-seen moments of the current status or another, dates on the periods' bounds, merged
units, desk reports of the same dossier by several units — both give the same figures per
unit, per period over the scope, and the same undecided dossiers for the forecast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reconciler.kpis.forecast import forecast
from services.reconciler.kpis.formulas import (
    DeskReportInput,
    KpiInput,
    KpiTally,
    Period,
    UnitKpis,
    Window,
)
from services.reconciler.kpis.service import Scope, tally_scope
from shared.clock import VN_TZ
from shared.db import unit_of_work
from shared.directory import load_directory
from shared.models import Dossier, DossierStatusSeen, FieldReport, Unit
from tests.conftest import TEST_NOW
from tests.services.reconciler.kpis.conftest import NEW, OLD, OTHER, PROVINCE, unit

AS_OF = datetime(2024, 10, 16, 12, tzinfo=VN_TZ)  # Wednesday of the last period
PERIODS = (
    Period(date(2024, 9, 30), date(2024, 10, 6), as_of=AS_OF),
    Period(date(2024, 10, 7), date(2024, 10, 11), as_of=AS_OF),  # a gap: 12 and 13 October
    Period(date(2024, 10, 14), date(2024, 10, 20), as_of=AS_OF),
)
MOMENTS = sorted(
    {
        moment
        for period in PERIODS
        for moment in (
            period.start_at - timedelta(microseconds=1),
            period.start_at,
            period.start_at + timedelta(days=2, hours=9),
            period.end_at - timedelta(microseconds=1),
            period.end_at,
        )
    }
    | {AS_OF - timedelta(hours=1), AS_OF, AS_OF + timedelta(hours=1), AS_OF + timedelta(days=30)}
)
MOMENT = st.sampled_from(MOMENTS)
MAYBE_MOMENT = st.none() | MOMENT
CLOSING = (3, 7, 8, 9, 10)
STORED_UNITS = (PROVINCE, NEW, OLD, OTHER, "000.00.77.H09")  # the last: outside the province
DIRECTORY = [
    unit(PROVINCE),
    unit(NEW, parent=PROVINCE),
    unit(OLD, parent=PROVINCE, replaced_by=NEW),
    unit(OTHER, parent=PROVINCE),
]


@dataclass(frozen=True)
class World:
    dossiers: list[tuple[str, KpiInput]]  # (stored unit code, dossier)
    seen: list[tuple[str, int, datetime]]  # dossier_status_seen rows
    reports: list[tuple[str, DeskReportInput]]  # (desk's unit code, report)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    count = draw(st.integers(0, 14))
    dossiers, seen = [], []
    for index in range(count):
        code = f"{NEW}-241001-{index:04d}"
        status = draw(st.none() | st.integers(1, 10))
        statuses = draw(st.sets(st.sampled_from(CLOSING), max_size=2))
        if status in CLOSING and draw(st.booleans()):
            statuses.add(status)  # often the current status: the first-seen fallback matters
        first_seen = {drawn_status: draw(MOMENT) for drawn_status in statuses}
        seen += [(code, drawn_status, at) for drawn_status, at in first_seen.items()]
        row = KpiInput(
            code=code,
            status=status,
            channel=draw(st.sampled_from([None, 1, 2, 3])),
            digitised=draw(st.sampled_from([None, True, False])),
            received_at=draw(MAYBE_MOMENT),
            due_at=draw(MAYBE_MOMENT),
            finished_at=draw(MAYBE_MOMENT),
            returned_at=draw(MAYBE_MOMENT),
            refused_at=draw(MAYBE_MOMENT),
            status_first_seen_at=first_seen.get(status) if status is not None else None,
            responsible=draw(st.sampled_from([None, "an.nv", "binh.tt"])),
        )
        dossiers.append((draw(st.sampled_from(STORED_UNITS)), row))
    codes = [row.code for _, row in dossiers] + [f"{NEW}-241001-9999"]  # one the system lacks
    known = {row.code for _, row in dossiers}
    reports = [
        (
            draw(st.sampled_from(STORED_UNITS)),
            DeskReportInput(dossier_code=code, occurred_at=draw(MOMENT), known=code in known),
        )
        for code in draw(st.lists(st.sampled_from(codes), max_size=10))
    ]
    return World(dossiers, seen, reports)


async def store(engine: AsyncEngine, world: World) -> None:
    async with unit_of_work(engine, "test") as connection:
        for table in (Dossier, DossierStatusSeen, FieldReport, Unit):
            await connection.execute(delete(table))
        await connection.execute(insert(Unit), DIRECTORY)
        if world.dossiers:
            await connection.execute(
                insert(Dossier),
                [
                    {
                        "code": row.code,
                        "status": row.status,
                        "unit_code": stored_unit,
                        "channel": row.channel,
                        "digitised": row.digitised,
                        "received_at": row.received_at,
                        "due_at": row.due_at,
                        "finished_at": row.finished_at,
                        "returned_at": row.returned_at,
                        "refused_at": row.refused_at,
                        "responsible": row.responsible,
                    }
                    for stored_unit, row in world.dossiers
                ],
            )
        if world.seen:
            await connection.execute(
                insert(DossierStatusSeen),
                [
                    {"dossier_code": code, "status": status, "first_emitted_at": at}
                    for code, status, at in world.seen
                ],
            )
        if world.reports:
            await connection.execute(
                insert(FieldReport),
                [
                    {
                        "report_id": f"R{index}",
                        "dossier_code": report.dossier_code,
                        "kind": "returned",
                        "occurred_at": report.occurred_at,
                        "officer": "lethic.motcua",
                        "unit_code": desk,
                        "channel": "api",
                        "received_at": TEST_NOW,
                    }
                    for index, (desk, report) in enumerate(world.reports)
                ],
            )


def answering(stored: str) -> str:
    return NEW if stored == OLD else stored


def by_formulas(
    world: World, periods: Sequence[Period], focus: int, in_scope: set[str]
) -> tuple[dict[str, KpiTally], list[UnitKpis]]:
    """Each unit's tally of the focus period (keeping its undecided dossiers), and per period
    the sum of every unit's tally, fed row by row."""
    window = Window.of(periods[focus])
    tallies: dict[tuple[str, int], KpiTally] = {}

    def tally(stored: str, index: int) -> KpiTally:
        key = (answering(stored), index)
        if key not in tallies:
            tallies[key] = KpiTally(periods[index], window=window if index == focus else None)
        return tallies[key]

    for index in range(len(periods)):
        for stored, row in world.dossiers:
            if answering(stored) in in_scope:
                tally(stored, index).add_dossier(row)
        for desk, report in world.reports:
            if answering(desk) in in_scope:
                tally(desk, index).add_report(report)
    units = {unit: found for (unit, index), found in tallies.items() if index == focus}
    totals = [
        summed([found.result() for (_, at), found in tallies.items() if at == index])
        for index in range(len(periods))
    ]
    return units, totals


def summed(counts: list[UnitKpis]) -> UnitKpis:
    return UnitKpis(*(sum(getattr(each, name) for each in counts) for name in UnitKpis.__slots__))


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(world=worlds(), whole_province=st.booleans(), focus=st.sampled_from([0, 2]))
async def test_the_database_counts_as_the_formulas_do(
    engine: AsyncEngine, world: World, whole_province: bool, focus: int
) -> None:
    await store(engine, world)
    async with unit_of_work(engine, "test") as connection:
        directory = await load_directory(connection)
        scope = Scope.of(directory, unit=PROVINCE if whole_province else NEW, key_units=None)
        found = await tally_scope(
            connection,
            scope=scope,
            periods=PERIODS,
            focus=focus,
            totals=True,
            forecast=PERIODS[focus],
        )
    in_scope = {PROVINCE, NEW, OTHER} if whole_province else {NEW}
    units, totals = by_formulas(world, PERIODS, focus, in_scope)
    empty = UnitKpis(0, 0, 0, 0, 0, 0, 0)
    assert set(found.units) >= set(units)
    for name, tally in found.units.items():
        expected = units.get(name)
        assert tally.result() == (expected.result() if expected else empty), name
        assert tally.undecided == (len(expected.undecided) if expected else 0), name
    for name, predicted in found.forecasts().items():
        expected = units.get(name)
        if expected is not None:
            row_by_row = forecast(expected.result(), len(expected.undecided), expected.undecided)
            assert predicted == row_by_row, name
    assert found.totals is not None
    assert [total.result() for total in found.totals] == totals


async def test_a_dossier_reported_by_two_units_counts_in_each_and_twice_in_the_total(
    engine: AsyncEngine,
) -> None:
    """Each unit's desk record is checked on its own: each unit counts the dossier once (its
    desk reported it twice), their parent's total adds the units' counts up."""
    moment = PERIODS[0].start_at + timedelta(days=1)
    code = f"{NEW}-241001-0001"
    report = DeskReportInput(dossier_code=code, occurred_at=moment, known=False)
    world = World([], [], [(NEW, report), (OLD, report), (OTHER, report), (OTHER, report)])
    await store(engine, world)
    async with unit_of_work(engine, "test") as connection:
        scope = Scope.of(await load_directory(connection), unit=PROVINCE, key_units=None)
        found = await tally_scope(connection, scope=scope, periods=PERIODS[:1], totals=True)
    assert (found.units[NEW].reported, found.units[OTHER].reported) == (1, 1)
    assert found.totals is not None
    assert (found.totals[0].reported, found.totals[0].reported_known) == (2, 0)
