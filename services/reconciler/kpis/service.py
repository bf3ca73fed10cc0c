"""KPIs per unit (contract §4): one streamed query per table, aggregated per answering unit.

Every dossier, desk report and discrepancy counts for the unit that answers for its code today
(``replaced_by`` followed to the end), so a merged old unit's figures appear under the new one.
The month's forecast (:mod:`services.reconciler.kpis.forecast`) is kept in the same pass: the
tallies collect the few undecided dossiers as the rows stream by. The caller owns the
transaction; nothing here writes.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconciler.kpis.forecast import Forecast, forecast, forecast_read
from services.reconciler.kpis.formulas import (
    DeskReportInput,
    KpiInput,
    KpiTally,
    Period,
    UnitKpis,
    Window,
    discrepancy_counts,
)
from shared.directory import Directory
from shared.models import Discrepancy, Dossier, DossierStatusSeen, FieldReport, Officer

STREAM_BATCH = 2000
UNRESOLVED = ("open", "acknowledged")


@dataclass(slots=True)
class Scope:
    """Which units get an item: those covered by the asked unit and by the key.

    ``root`` is the unit that answers today for the asked code (asking for an old, merged code
    means asking for the unit that took it over); ``key_units`` is None for admin keys.
    """

    directory: Directory
    root: str | None
    key_units: frozenset[str] | None
    _answers: dict[str | None, str | None] = field(default_factory=dict)

    @classmethod
    def of(
        cls, directory: Directory, *, unit: str | None, key_units: Collection[str] | None
    ) -> Scope:
        root = directory.answering_unit(unit) if unit is not None else None
        keys = frozenset(key_units) if key_units is not None else None
        return cls(directory=directory, root=root, key_units=keys)

    @property
    def unrestricted(self) -> bool:
        return self.root is None and self.key_units is None

    def includes(self, unit: str) -> bool:
        """Whether ``unit`` (an answering unit) gets an item."""
        if self.root is not None and not self.directory.covers((self.root,), unit):
            return False
        return self.key_units is None or self.directory.covers(self.key_units, unit)

    def item_of(self, code: str | None) -> str | None:
        """The answering unit of ``code`` if it is in scope, else None (memoised per code)."""
        if code not in self._answers:
            answering = self.directory.answering_unit(code)
            self._answers[code] = (
                answering if answering is not None and self.includes(answering) else None
            )
        return self._answers[code]

    def named_units(self) -> set[str]:
        """Units that get an item even with nothing to count, when in scope.

        Those are the directory's current units (not replaced), the asked unit and the key's.
        """
        directory = self.directory
        candidates = {code for code, new in directory.replacements.items() if new is None}
        for code in (self.root, *(self.key_units or ())):
            answering = directory.answering_unit(code)
            if answering is not None:
                candidates.add(answering)
        return {unit for unit in candidates if self.includes(unit)}

    def source_codes(self) -> set[str] | None:
        """Every code whose rows may count in scope (for a SQL filter); None = no filter.

        A code unknown to the directory answers for itself and is covered only when named.
        """
        if self.unrestricted:
            return None
        directory = self.directory
        known = set(directory.parents) | {c for c in directory.replacements.values() if c}
        named = {self.root} if self.root is not None else set()
        named |= self.key_units or set()
        return {code for code in known | named if self.item_of(code) is not None}


@dataclass(slots=True)
class ScopeTallies:
    """What one pass over a scope's rows counted.

    ``units``: a tally per unit in scope for ``periods[focus]`` (the items of ``GET /kpis``);
    ``totals``: when asked for, one tally per period fed with every row of the scope (the
    leaders' cards and 12-week trend); ``open_counts``: unresolved discrepancies per unit and
    kind, now, whatever the periods; ``outlook``: when a forecast was asked for, a tally per
    unit for that period keeping its undecided dossiers (``units`` itself when it is the focus
    period).
    """

    periods: tuple[Period, ...]
    focus: int
    units: dict[str, KpiTally]
    totals: list[KpiTally] | None
    open_counts: dict[str, list[tuple[str, int]]]
    outlook: dict[str, KpiTally] | None = None

    def items(self) -> list[dict[str, Any]]:
        """One item per unit, sorted by unit code: the answer of ``GET /kpis`` (with
        ``forecast`` when the pass forecast the focus period)."""
        forecasts = self.forecasts() if self.outlook is self.units else None
        return [
            kpi_item(
                unit,
                self.units[unit].result(),
                self.open_counts.get(unit, ()),
                forecast=None if forecasts is None else forecasts[unit],
            )
            for unit in sorted(self.units)
        ]

    def forecasts(self) -> dict[str, Forecast]:
        """The forecast of each unit of ``outlook``, sorted by unit code (none without one)."""
        found = self.outlook or {}
        return {
            unit: forecast(found[unit].result(), found[unit].undecided) for unit in sorted(found)
        }

    def total_discrepancies(self) -> dict[str, int]:
        """Unresolved discrepancies per kind over the whole scope."""
        return discrepancy_counts(pair for pairs in self.open_counts.values() for pair in pairs)


def kpi_item(
    unit: str,
    kpis: UnitKpis,
    open_counts: Iterable[tuple[str, int]],
    *,
    forecast: Forecast | None = None,
) -> dict[str, Any]:
    """One item of ``GET /kpis`` (contract §4), with ``forecast`` when one is given."""
    item = {
        "unit_code": unit,
        "received": kpis.received,
        "on_time_pct": kpis.on_time_pct,
        "online_pct": kpis.online_pct,
        "digitised_pct": kpis.digitised_pct,
        "in_system_pct": kpis.in_system_pct,
        "without_due_date": kpis.without_due_date,
        "active_discrepancies": discrepancy_counts(open_counts),
    }
    if forecast is not None:
        item["forecast"] = forecast_read(forecast)
    return item


async def unit_kpis(
    connection: AsyncConnection, *, scope: Scope, period: Period, forecast: bool = False
) -> list[dict[str, Any]]:
    """One item per unit in scope, sorted by unit code (contract §4 ``GET /kpis``); with
    ``forecast``, each item has the month's forecast of the period."""
    tallies = await tally_scope(
        connection, scope=scope, periods=(period,), forecast=period if forecast else None
    )
    return tallies.items()


async def tally_scope(
    connection: AsyncConnection,
    *,
    scope: Scope,
    periods: Sequence[Period],
    focus: int = -1,
    totals: bool = False,
    forecast: Period | None = None,
) -> ScopeTallies:
    """Tally ``periods`` (oldest first, not overlapping) in one streamed pass per table.

    ``GET /kpis`` asks for one period; the leaders' board for 12 weeks with their totals, so
    that its cards, per-unit table and trend come from the rows and formulas of the API rather
    than from 12 calls. Each row goes to the period of its date (a binary search).

    ``forecast``: a period (the focus one, or any other: the board's month) whose per-unit
    tallies keep their undecided dossiers (``ScopeTallies.outlook``). Its dossiers are read by
    the same query; desk reports are not needed for it.
    """
    spans = tuple(periods)
    focus = focus % len(spans)
    starts = [span.start_at.astimezone(UTC) for span in spans]  # rows' time zone: fast compare
    whole = Period(spans[0].first_day, spans[-1].last_day)
    codes = scope.source_codes()
    window = Window.of(forecast) if forecast is not None else None
    focused = forecast == spans[focus]
    named = scope.named_units()
    units = _ByUnit(spans[focus], window if focused else None, named)
    sums = [KpiTally(span) for span in spans] if totals else None
    apart = _ByUnit(forecast, window, named) if forecast is not None and not focused else None

    def period_of(moment: datetime | None) -> int | None:
        if moment is None:
            return None
        index = bisect_right(starts, moment) - 1
        return index if index >= 0 and spans[index].contains(moment) else None

    ranges = [whole] if apart is None else [whole, apart.period]
    async for unit_code, row in _dossiers(connection, periods=ranges, codes=codes):
        unit = scope.item_of(unit_code)
        if unit is None:
            continue
        if apart is not None and apart.period.contains(row.received_at):
            apart.of(unit).add_dossier(row)
        index = period_of(row.received_at)
        if index is None:
            continue
        if index == focus:
            units.of(unit).add_dossier(row)
        if sums is not None:
            sums[index].add_dossier(row)
    async for unit_code, report in _reports(connection, period=whole, codes=codes):
        unit = scope.item_of(unit_code)
        index = period_of(report.occurred_at)
        if unit is None or index is None:
            continue
        if index == focus:
            units.of(unit).add_report(report)
        if sums is not None:
            sums[index].add_report(report)
    open_counts: dict[str, list[tuple[str, int]]] = {}
    for unit_code, kind, count in await _unresolved(connection, codes=codes):
        unit = scope.item_of(unit_code)
        if unit is not None:
            units.of(unit)
            open_counts.setdefault(unit, []).append((kind, count))
    if apart is not None:
        for unit in units:
            apart.of(unit)  # every unit of the table gets its forecast
    return ScopeTallies(spans, focus, units, sums, open_counts, units if focused else apart)


class _ByUnit(dict[str, KpiTally]):
    """Tallies of ``period`` by answering unit, each started on first use (``of``)."""

    def __init__(self, period: Period, window: Window | None, units: Iterable[str]) -> None:
        super().__init__((unit, KpiTally(period, window=window)) for unit in units)
        self.period = period
        self.window = window

    def of(self, unit: str) -> KpiTally:
        found = self.get(unit)
        if found is None:
            found = self[unit] = KpiTally(self.period, window=self.window)
        return found


def _received_in(periods: Sequence[Period]) -> ColumnElement[bool]:
    """``received_at`` within any of ``periods``, overlapping or touching ones merged."""
    bounds: list[list[datetime]] = []
    for start, end in sorted((each.start_at, each.end_at) for each in periods):
        if bounds and start <= bounds[-1][1]:
            bounds[-1][1] = max(bounds[-1][1], end)
        else:
            bounds.append([start, end])
    return or_(
        *(and_(Dossier.received_at >= start, Dossier.received_at < end) for start, end in bounds)
    )


async def _dossiers(
    connection: AsyncConnection, *, periods: Sequence[Period], codes: set[str] | None
) -> AsyncIterator[tuple[str | None, KpiInput]]:
    """Dossiers received in any of the periods, streamed: (DonViXuLy, KpiInput)."""
    statement = (
        select(
            Dossier.unit_code,
            Dossier.code,
            Dossier.status,
            Dossier.channel,
            Dossier.digitised,
            Dossier.received_at,
            Dossier.due_at,
            Dossier.finished_at,
            Dossier.returned_at,
            Dossier.refused_at,
            DossierStatusSeen.first_emitted_at,
            Dossier.responsible,
        )
        .outerjoin(
            DossierStatusSeen,
            (DossierStatusSeen.dossier_code == Dossier.code)
            & (DossierStatusSeen.status == Dossier.status),
        )
        .where(_received_in(periods))
    )
    if codes is not None:
        statement = statement.where(Dossier.unit_code.in_(sorted(codes)))
    result = await connection.stream(statement.execution_options(yield_per=STREAM_BATCH))
    async for batch in result.partitions():  # one switch to the driver per batch, not per row
        for (
            unit,
            code,
            status,
            channel,
            digitised,
            received,
            due,
            finished,
            returned,
            refused,
            seen,
            responsible,
        ) in batch:
            yield (
                unit,
                KpiInput(
                    code=code,
                    status=status,
                    channel=channel,
                    digitised=digitised,
                    received_at=received,
                    due_at=due,
                    finished_at=finished,
                    returned_at=returned,
                    refused_at=refused,
                    status_first_seen_at=seen,
                    responsible=responsible,
                ),
            )


async def _reports(
    connection: AsyncConnection, *, period: Period, codes: set[str] | None
) -> AsyncIterator[tuple[str, DeskReportInput]]:
    """Desk reports of the period, streamed with whether their dossier is known: (desk, input)."""
    statement = (
        select(
            FieldReport.unit_code,
            FieldReport.dossier_code,
            FieldReport.occurred_at,
            Dossier.code.is_not(None).label("known"),
        )
        .outerjoin(Dossier, Dossier.code == FieldReport.dossier_code)
        .where(FieldReport.occurred_at >= period.start_at, FieldReport.occurred_at < period.end_at)
    )
    if codes is not None:
        statement = statement.where(FieldReport.unit_code.in_(sorted(codes)))
    result = await connection.stream(statement.execution_options(yield_per=STREAM_BATCH))
    async for batch in result.partitions():
        for row in batch:
            yield (
                row.unit_code,
                DeskReportInput(
                    dossier_code=row.dossier_code,
                    occurred_at=row.occurred_at,
                    known=bool(row.known),
                ),
            )


async def _unresolved(
    connection: AsyncConnection, *, codes: set[str] | None
) -> list[tuple[str | None, str, int]]:
    """Open or acknowledged discrepancies now, counted per (unit code, kind)."""
    statement = (
        select(Discrepancy.unit_code, Discrepancy.kind, func.count())
        .where(Discrepancy.status.in_(UNRESOLVED))
        .group_by(Discrepancy.unit_code, Discrepancy.kind)
    )
    if codes is not None:
        statement = statement.where(Discrepancy.unit_code.in_(sorted(codes)))
    rows = await connection.execute(statement)
    return [(unit_code, kind, count) for unit_code, kind, count in rows.all()]


async def holder_names(connection: AsyncConnection, accounts: Collection[str]) -> dict[str, str]:
    """The directory's full name of each of ``accounts`` it knows (one query)."""
    if not accounts:
        return {}
    rows = await connection.execute(
        select(Officer.account, Officer.full_name).where(Officer.account.in_(sorted(accounts)))
    )
    return {account: name for account, name in rows.all()}
