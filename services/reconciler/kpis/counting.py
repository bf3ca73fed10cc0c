"""The KPI counts of contract §4 taken by the database: one ``GROUP BY`` per table.

The formulas are those of :mod:`.formulas` (QĐ 766's end of a dossier from ``END_STAMPS``, an
open dossier measured at its period's open end), written as SQL, so that a province's twelve
weeks (some 200,000 dossiers and 80,000 desk reports) come back as a few hundred rows instead of
streaming through Python row by row. ``tests/services/reconciler/kpis/test_counting.py`` holds
them equal to :class:`~.formulas.KpiTally` on random dossiers, on PostgreSQL and SQLite.

Each query takes non-overlapping periods and numbers them by position (the first that contains
the row's date); rows outside every period are not read.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce
from typing import Any, TypeAlias

from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    and_,
    case,
    func,
    literal,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconciler.kpis.formulas import (
    END_STAMPS,
    ONLINE_CHANNEL,
    Period,
    Undecided,
    UnitKpis,
    Window,
)
from shared.db import UTCDateTime
from shared.models import Dossier, DossierStatusSeen, FieldReport

Moment: TypeAlias = SQLColumnExpression[datetime | None]


@dataclass(frozen=True, slots=True)
class Counted:
    """Counts of one unit code (as stored, or answering for reports) in one period."""

    unit_code: str | None
    period: int  # position in the periods asked for
    kpis: UnitKpis
    undecided: int = 0  # when a window was given: the dossiers still to be decided in it


@dataclass(slots=True)
class KpiCounts:
    """A unit's counts for one period, added up from what the database counted (a unit's codes,
    or a scope's units): what :class:`~.formulas.KpiTally` counts row by row; for a forecast's
    period, how many dossiers are undecided and the first of them due."""

    received: int = 0
    with_due_date: int = 0
    on_time: int = 0
    online: int = 0
    digitised: int = 0
    reported: int = 0
    reported_known: int = 0
    undecided: int = 0  # of the forecast's period: still to be decided (:class:`Window`)
    earliest: list[Undecided] = field(default_factory=list)  # the first of them due

    def add(self, counts: UnitKpis) -> None:
        """Add counts of the same period (another code of the unit, or another unit)."""
        self.received += counts.received
        self.with_due_date += counts.with_due_date
        self.on_time += counts.on_time
        self.online += counts.online
        self.digitised += counts.digitised
        self.reported += counts.reported
        self.reported_known += counts.reported_known

    def result(self) -> UnitKpis:
        return UnitKpis(
            received=self.received,
            with_due_date=self.with_due_date,
            on_time=self.on_time,
            online=self.online,
            digitised=self.digitised,
            reported=self.reported,
            reported_known=self.reported_known,
        )


def _earliest(first: Moment, second: Moment) -> ColumnElement[Any]:
    """The earlier of two moments, either of which may be NULL (PostgreSQL's ``least``; SQLite's
    ``min`` answers NULL as soon as one is)."""
    return case(
        (or_(second.is_(None), first <= second), func.coalesce(first, second)), else_=second
    )


def ended_at() -> ColumnElement[Any]:
    """QĐ 766's end of the dossier of the row (:func:`.formulas.ended_at`), NULL when open.

    The first-seen moment of the current status is a correlated lookup, which the ``CASE`` only
    reaches for a closed dossier whose stamps it needs.
    """
    seen = (
        select(DossierStatusSeen.first_emitted_at)
        .where(
            DossierStatusSeen.dossier_code == Dossier.code,
            DossierStatusSeen.status == Dossier.status,
        )
        .scalar_subquery()
    )
    columns: dict[str, Moment] = {
        "finished_at": Dossier.finished_at,
        "returned_at": Dossier.returned_at,
        "refused_at": Dossier.refused_at,
        "status_first_seen_at": seen,
    }
    whens = []
    for status, stamps in END_STAMPS.items():
        earliest = reduce(_earliest, (columns[name] for name in stamps))
        if "status_first_seen_at" not in stamps:
            earliest = func.coalesce(earliest, seen)
        whens.append((Dossier.status == int(status), earliest))
    return case(*whens, else_=null())


def _position(column: Moment, periods: Sequence[Period]) -> ColumnElement[Any]:
    return case(
        *(
            (and_(column >= period.start_at, column < period.end_at), index)
            for index, period in enumerate(periods)
        ),
        else_=null(),
    )


def _within(column: Moment, periods: Sequence[Period]) -> ColumnElement[bool]:
    """``column`` within any of ``periods``, touching ones merged (one range for 12 weeks)."""
    bounds: list[list[datetime]] = []
    for start, end in sorted((each.start_at, each.end_at) for each in periods):
        if bounds and start <= bounds[-1][1]:
            bounds[-1][1] = max(bounds[-1][1], end)
        else:
            bounds.append([start, end])
    return or_(*(and_(column >= start, column < end) for start, end in bounds))


def _moment(value: datetime) -> ColumnElement[datetime]:
    return literal(value, UTCDateTime())


async def count_dossiers(
    connection: AsyncConnection,
    *,
    periods: Sequence[Period],
    codes: Collection[str] | None,
    window: Window | None = None,
) -> list[Counted]:
    """Dossiers received in each period, per stored unit code (``codes``: only those); with a
    ``window``, also those of them still to be decided in it (:meth:`Window.undecided`)."""
    rows = (
        select(
            Dossier.unit_code.label("unit_code"),
            _position(Dossier.received_at, periods).label("period"),
            Dossier.channel.label("channel"),
            Dossier.digitised.label("digitised"),
            Dossier.due_at.label("due_at"),
            ended_at().label("ended_at"),
        )
        .where(_within(Dossier.received_at, periods))
        .where(Dossier.unit_code.in_(sorted(codes)) if codes is not None else true())
        .subquery()
    )
    open_end = case(
        {index: _moment(period.open_end) for index, period in enumerate(periods)},
        value=rows.c.period,
    )
    undecided = (
        func.count().filter(_undecided(rows.c.ended_at, rows.c.due_at, window))
        if window is not None
        else literal(0)
    )
    statement = select(
        rows.c.unit_code,
        rows.c.period,
        func.count(),
        func.count(rows.c.due_at),
        func.count().filter(func.coalesce(rows.c.ended_at, open_end) <= rows.c.due_at),
        func.count().filter(rows.c.channel == ONLINE_CHANNEL),
        func.count().filter(rows.c.digitised.is_(True)),
        undecided,
    ).group_by(rows.c.unit_code, rows.c.period)
    found = await connection.execute(statement)
    return [
        Counted(
            unit,
            period,
            UnitKpis(
                received=received,
                with_due_date=with_due,
                on_time=on_time,
                online=online,
                digitised=digitised,
                reported=0,
                reported_known=0,
            ),
            undecided,
        )
        for unit, period, received, with_due, on_time, online, digitised, undecided in found
    ]


def _undecided(ended: Moment, due: Moment, window: Window) -> ColumnElement[bool]:
    """:meth:`Window.undecided`: no end yet, due from now until the month ends."""
    return and_(ended.is_(None), due >= window.now, due < window.until)


async def count_reports(
    connection: AsyncConnection,
    *,
    periods: Sequence[Period],
    codes: Collection[str] | None,
    answering: Mapping[str, str],
) -> list[Counted]:
    """Distinct dossiers the desks of each answering unit reported in each period, and of
    those the ones the system knows: ``answering`` maps the codes another unit answers for today
    (a merged unit's desk reports count under the new one)."""
    unit = (
        case(
            *((FieldReport.unit_code == old, new) for old, new in sorted(answering.items())),
            else_=FieldReport.unit_code,
        )
        if answering
        else FieldReport.unit_code
    )
    known = Dossier.code.is_not(None)
    reported = (
        select(
            unit.label("unit_code"),
            _position(FieldReport.occurred_at, periods).label("period"),
            known.label("known"),
        )
        .outerjoin(Dossier, Dossier.code == FieldReport.dossier_code)
        .where(_within(FieldReport.occurred_at, periods))
        .where(
            FieldReport.unit_code.in_(sorted(codes))
            if codes is not None
            else FieldReport.unit_code.is_not(None)
        )
        .group_by(unit, "period", FieldReport.dossier_code, known)  # distinct per unit
        .subquery()
    )
    statement = select(
        reported.c.unit_code,
        reported.c.period,
        func.count(),
        func.count().filter(reported.c.known),
    ).group_by(reported.c.unit_code, reported.c.period)
    found = await connection.execute(statement)
    return [
        Counted(unit_code, period, UnitKpis(0, 0, 0, 0, 0, reported, reported_known))
        for unit_code, period, reported, reported_known in found.all()
    ]


async def earliest_undecided(
    connection: AsyncConnection,
    *,
    period: Period,
    window: Window,
    codes: Collection[str],
    limit: int,
) -> list[tuple[str | None, Undecided]]:
    """Of each stored unit code of ``codes``, the first ``limit`` dossiers of ``period`` (by due
    date, then code) still to be decided in ``window``: those the forecast may name."""
    ended = ended_at()
    ranked = (
        select(
            Dossier.unit_code,
            Dossier.code,
            Dossier.due_at,
            Dossier.responsible,
            func.row_number()
            .over(partition_by=Dossier.unit_code, order_by=(Dossier.due_at, Dossier.code))
            .label("rank"),
        )
        .where(
            _within(Dossier.received_at, (period,)),
            Dossier.unit_code.in_(sorted(codes)),
            _undecided(ended, Dossier.due_at, window),
        )
        .subquery()
    )
    found = await connection.execute(
        select(ranked.c.unit_code, ranked.c.code, ranked.c.due_at, ranked.c.responsible).where(
            ranked.c.rank <= limit
        )
    )
    return [
        (unit, Undecided(code, due, responsible))
        for unit, code, due, responsible in found.all()
        if due is not None  # the query's condition; for the type checker
    ]
