"""KPIs per unit (contract §4): counted by the database, added up per answering unit.

Every dossier, desk report and discrepancy counts for the unit that answers for its code today
(``replaced_by`` followed to the end), so a merged old unit's figures appear under the new one.
The month's forecast (:mod:`services.reconciler.kpis.forecast`) takes its undecided dossiers
from one more query. The caller owns the transaction; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import ColumnElement, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconciler.kpis.counting import (
    Counted,
    KpiCounts,
    count_dossiers,
    count_reports,
    earliest_undecided,
)
from services.reconciler.kpis.forecast import Forecast, deciding_count, forecast, forecast_read
from services.reconciler.kpis.formulas import (
    Period,
    UnitKpis,
    Window,
    discrepancy_counts,
)
from shared.directory import Directory
from shared.models import Discrepancy, Officer

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
    ``totals``: when asked for, per period the sum of the units' counts (the leaders' cards and
    12-week trend; a dossier the desks of two units reported counts in each, as in each unit's
    item); ``open_counts``: unresolved discrepancies per unit and
    kind, now, whatever the periods; ``outlook``: when a forecast was asked for, a tally per
    unit for that period keeping its undecided dossiers (``units`` itself when it is the focus
    period).
    """

    periods: tuple[Period, ...]
    focus: int
    units: dict[str, KpiCounts]
    totals: list[KpiCounts] | None
    open_counts: dict[str, list[tuple[str, int]]]
    outlook: dict[str, KpiCounts] | None = None

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
            unit: forecast(found[unit].result(), found[unit].undecided, found[unit].earliest)
            for unit in sorted(found)
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
    known: Mapping[int, Sequence[Counted]] | None = None,
) -> ScopeTallies:
    """Tally ``periods`` (oldest first, not overlapping): one counting query per table.

    ``GET /kpis`` asks for one period; the leaders' board for 12 weeks with their totals, so
    that its cards, per-unit table and trend come from the queries and formulas of the API
    rather than from 12 calls. The database counts per stored unit code and period
    (:mod:`.counting`); here the codes are added up under the unit that answers for them.

    ``forecast``: a period (the focus one, or any other: the board's month) whose per-unit
    tallies keep their undecided dossiers (``ScopeTallies.outlook``); desk reports are not
    needed for it. ``known``: counts already taken of some periods, by position (the board's
    stored past weeks, :mod:`.stored`); only the others are counted.
    """
    spans = tuple(periods)
    focus = focus % len(spans)
    codes = scope.source_codes()
    named = scope.named_units()
    units = _ByUnit(named)
    sums = [KpiCounts() for _ in spans] if totals else None
    focused = forecast is not None and forecast == spans[focus]
    window = Window.of(forecast) if focused and forecast is not None else None
    known = known or {}
    counted = [found for index in sorted(known) for found in known[index]]
    live = [index for index in range(len(spans)) if index not in known]
    if live:
        asked = [spans[index] for index in live]
        answering = scope.directory.answering_units()
        fresh = await count_dossiers(connection, periods=asked, codes=codes, window=window)
        fresh += await count_reports(connection, periods=asked, codes=codes, answering=answering)
        counted += [replace(found, period=live[found.period]) for found in fresh]
    for found in counted:
        unit = scope.item_of(found.unit_code)
        if unit is None:
            continue
        if found.period == focus:
            tally = units.of(unit)
            tally.add(found.kpis)
            tally.undecided += found.undecided
        if sums is not None:
            sums[found.period].add(found.kpis)
    open_counts: dict[str, list[tuple[str, int]]] = {}
    for unit_code, kind, count in await _unresolved(connection, codes=codes):
        unit = scope.item_of(unit_code)
        if unit is not None:
            units.of(unit)
            open_counts.setdefault(unit, []).append((kind, count))
    outlook: _ByUnit | None = None
    if forecast is not None:
        outlook = units if focused else await _month(connection, scope, forecast)
        for unit in units:
            outlook.of(unit)  # every unit of the table gets its forecast
        await _keep_earliest(connection, scope, forecast, outlook)
    return ScopeTallies(spans, focus, units, sums, open_counts, outlook)


class _ByUnit(dict[str, KpiCounts]):
    """Counts by answering unit, each started on first use (``of``)."""

    def __init__(self, units: Iterable[str]) -> None:
        super().__init__((unit, KpiCounts()) for unit in units)

    def of(self, unit: str) -> KpiCounts:
        found = self.get(unit)
        if found is None:
            found = self[unit] = KpiCounts()
        return found


async def _month(connection: AsyncConnection, scope: Scope, period: Period) -> _ByUnit:
    """Each unit's dossier counts for ``period`` alone (the forecast's month), with how many are
    still to be decided."""
    found = _ByUnit(scope.named_units())
    counted = await count_dossiers(
        connection, periods=(period,), codes=scope.source_codes(), window=Window.of(period)
    )
    for each in counted:
        unit = scope.item_of(each.unit_code)
        if unit is not None:
            tally = found.of(unit)
            tally.add(each.kpis)
            tally.undecided += each.undecided
    return found


async def _keep_earliest(
    connection: AsyncConnection, scope: Scope, period: Period, tallies: _ByUnit
) -> None:
    """Give each unit at risk the first undecided dossiers due, as many as decide its target
    (:func:`deciding_count`): the ones its forecast names. Units not at risk need none."""
    window = Window.of(period)
    needed = {
        unit: count
        for unit, tally in tallies.items()
        if (count := deciding_count(tally.result(), tally.undecided)) > 0
    }
    if window is None or not needed:
        return
    directory = scope.directory
    candidates = scope.source_codes() or {*directory.parents, *directory.replacements}
    codes = {code for code in candidates if scope.item_of(code) in needed} | needed.keys()
    found = await earliest_undecided(
        connection, period=period, window=window, codes=codes, limit=max(needed.values())
    )
    for unit_code, undecided in found:
        unit = scope.item_of(unit_code)
        if unit is not None and unit in needed:
            tallies.of(unit).earliest.append(undecided)


def unresolved_now() -> ColumnElement[bool]:
    """Open or acknowledged, written as the partial indexes' predicate (``status <>
    'resolved'``) word for word: PostgreSQL uses a partial index only when it can prove it."""
    return Discrepancy.status != literal_column("'resolved'")


async def _unresolved(
    connection: AsyncConnection, *, codes: set[str] | None
) -> list[tuple[str | None, str, int]]:
    """Open or acknowledged discrepancies now, counted per (unit code, kind)."""
    statement = (
        select(Discrepancy.unit_code, Discrepancy.kind, func.count())
        .where(unresolved_now())
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
