"""What the leaders' weekly review reads (contract §6): a week's KPIs with their 12-week trend,
and the late, stalled, returned-but-open and rewritten dossiers of a scope.

The KPIs come from :func:`services.reconciler.kpis.service.tally_scope`, the pass behind
``GET /api/v1/kpis``: a unit's figures on the board are the API's for Monday..Sunday. The lists
are the discrepancies outstanding at the end of the week (now, for the current week): the
dossiers the leaders must follow up. "Outstanding then" goes by ``since``, when the condition
began according to the facts, not by when doisoat happened to open it. The caller owns the
transaction; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconciler.kpis import stored
from services.reconciler.kpis.formulas import IsoWeek, Period, trend_weeks
from services.reconciler.kpis.service import Scope, ScopeTallies, tally_scope, unresolved_now
from shared.models import Discrepancy, Dossier, Officer, Unit
from shared.vocabulary import Kind

# The board's lists, by the name their table and export use: the page shows and exports every
# list of this mapping, in this order.
REVIEW_KINDS: Final[Mapping[str, str]] = {
    "late": Kind.OVERDUE_NO_APOLOGY,
    "stalled": Kind.STALLED,
    "returned_but_open": Kind.RETURNED_BUT_OPEN,
    "rewritten": Kind.DATES_REWRITTEN,
}


@dataclass(frozen=True, slots=True)
class WeekKpis:
    """The week's tallies: per unit for the week, and over the scope for each trend week.

    ``counted_at``: when the stored past weeks used were counted (:mod:`.stored`); None when
    every week was counted for this answer.
    """

    week: IsoWeek
    weeks: tuple[IsoWeek, ...]  # oldest first, ending with ``week``
    tallies: ScopeTallies
    counted_at: datetime | None = None


async def week_kpis(
    connection: AsyncConnection,
    *,
    scope: Scope,
    week: IsoWeek,
    now: datetime,
    forecast: Period | None = None,
    stored_max_age: timedelta = timedelta(0),
) -> WeekKpis:
    """The week and the 11 before it: the past weeks stored less than ``stored_max_age`` ago
    as stored, the others counted now; with ``forecast``, that period's forecast per unit."""
    weeks = tuple(trend_weeks(week))
    known = await stored.fresh_counts(connection, weeks=weeks, now=now, max_age=stored_max_age)
    tallies = await tally_scope(
        connection,
        scope=scope,
        periods=[each.period(as_of=now) for each in weeks],
        focus=-1,
        totals=True,
        forecast=forecast,
        known=known.by_period,
    )
    return WeekKpis(week, weeks, tallies, known.counted_at)


@dataclass(frozen=True, slots=True)
class ReviewEntry:
    """One dossier of a list, with the discrepancy that put it there."""

    dossier_code: str
    unit_code: str | None  # the unit that answers for it today
    procedure_name: str | None
    dossier_status: int | None
    received_at: datetime | None
    due_at: datetime | None
    since: datetime
    severity: str
    status: str  # the discrepancy's status now
    resolved_at: datetime | None
    responsible: str | None
    responsible_name: str | None
    # What the rule saw (contract §4 ``details``): for DATES_REWRITTEN, which date moved from
    # what to what (``field``, ``before``, ``after``, ISO 8601), read by the board.
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReviewList:
    name: str
    kind: str
    entries: list[ReviewEntry]
    total: int  # all of them, when ``entries`` stops at the limit


def outstanding_at(week: IsoWeek, now: datetime) -> datetime | None:
    """The moment the lists look at: the end of the week, or None (now) when it is not over."""
    end = week.period(as_of=None).end_at
    return end if end <= now else None


async def review_lists(
    connection: AsyncConnection,
    *,
    scope: Scope,
    at: datetime | None,
    limit: int,
    names: Collection[str] = tuple(REVIEW_KINDS),
) -> dict[str, ReviewList]:
    """The discrepancies of each kind outstanding at ``at`` (None: unresolved now), oldest first.

    At most ``limit`` entries per list; ``total`` counts them all.
    """
    kinds = {name: REVIEW_KINDS[name] for name in names}
    conditions = _outstanding(scope, at)
    counted = await connection.execute(
        select(Discrepancy.kind, func.count())
        .where(*conditions, Discrepancy.kind.in_(sorted(kinds.values())))
        .group_by(Discrepancy.kind)
    )
    totals = {kind: int(count) for kind, count in counted.all()}
    lists = {}
    for name, kind in kinds.items():
        rows = await connection.execute(
            select(
                Discrepancy.dossier_code,
                Discrepancy.unit_code,
                Discrepancy.since,
                Discrepancy.severity,
                Discrepancy.status,
                Discrepancy.resolved_at,
                Discrepancy.responsible,
                Discrepancy.details,
                Officer.full_name,
                Dossier.procedure_name,
                Dossier.status.label("dossier_status"),
                Dossier.received_at,
                Dossier.due_at,
            )
            .outerjoin(Dossier, Dossier.code == Discrepancy.dossier_code)
            .outerjoin(Officer, Officer.account == Discrepancy.responsible)
            .where(*conditions, Discrepancy.kind == kind)
            .order_by(Discrepancy.since, Discrepancy.dossier_code)
            .limit(limit)
        )
        entries = [_entry(row, scope) for row in rows.all()]
        lists[name] = ReviewList(name, kind, entries, totals.get(kind, 0))
    return lists


def _outstanding(scope: Scope, at: datetime | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if at is None:
        conditions.append(unresolved_now())
    else:
        conditions += [
            Discrepancy.since < at,
            or_(Discrepancy.resolved_at.is_(None), Discrepancy.resolved_at >= at),
        ]
    codes = scope.source_codes()
    if codes is not None:
        conditions.append(Discrepancy.unit_code.in_(sorted(codes)))
    return conditions


def _entry(row: Any, scope: Scope) -> ReviewEntry:
    return ReviewEntry(
        dossier_code=row.dossier_code,
        unit_code=scope.item_of(row.unit_code) or row.unit_code,
        procedure_name=row.procedure_name,
        dossier_status=row.dossier_status,
        received_at=row.received_at,
        due_at=row.due_at,
        since=row.since,
        severity=row.severity,
        status=row.status,
        resolved_at=row.resolved_at,
        responsible=row.responsible,
        responsible_name=row.full_name,
        details=row.details or {},
    )


async def unit_names(connection: AsyncConnection, codes: Collection[str]) -> dict[str, str]:
    """The directory's name of each of ``codes`` it knows."""
    if not codes:
        return {}
    rows = await connection.execute(
        select(Unit.code, Unit.name).where(Unit.code.in_(sorted(codes)))
    )
    return {code: name for code, name in rows.all()}
