"""Past weeks' KPI counts, stored, so that the leaders' board does not count twelve weeks of a
province (some 200,000 dossiers) on every request.

A past week's counts depend on the data alone — an open dossier is measured at the week's end —
so the reconciler counts the twelve weeks before the current one every few minutes
(:func:`refresh`), which also takes in what changed since (a dossier of that week closed late
today, a desk report entered afterwards). The board reads a stored week only while it is fresh
(:func:`fresh_counts`), and counts the others live with the same queries as
``GET /api/v1/kpis`` (:mod:`.counting`), which itself always counts live.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconciler.kpis.counting import Counted, KpiCounts, count_dossiers, count_reports
from services.reconciler.kpis.formulas import (
    TREND_WEEKS,
    IsoWeek,
    UnitKpis,
    trend_weeks,
)
from shared.clock import VN_TZ
from shared.directory import Directory
from shared.models import KpiWeek, KpiWeekCount

STORED_WEEKS = TREND_WEEKS  # the trend of last week's board: the usual weekly review
_COUNTS = (
    "received",
    "with_due_date",
    "on_time",
    "online",
    "digitised",
    "reported",
    "reported_known",
)


@dataclass(frozen=True, slots=True)
class StoredCounts:
    """The counts of the stored weeks asked for, by their position among the weeks asked."""

    by_period: dict[int, list[Counted]]
    counted_at: datetime | None  # the oldest count used; None when none was


async def refresh(
    connection: AsyncConnection, *, directory: Directory, now: datetime, weeks: int = STORED_WEEKS
) -> int:
    """Count the ``weeks`` complete weeks before ``now``'s and store them in place of what was
    stored; older weeks are dropped. Returns the number of (week, unit) rows stored."""
    current = IsoWeek.containing(now.astimezone(VN_TZ).date())
    chosen = trend_weeks(current.shifted(-1), weeks)
    periods = [week.period(as_of=now) for week in chosen]
    counted = await count_dossiers(connection, periods=periods, codes=None)
    counted += await count_reports(
        connection, periods=periods, codes=None, answering=directory.answering_units()
    )
    sums: dict[tuple[date, str], KpiCounts] = {}
    for found in counted:
        if found.unit_code is not None:
            key = (chosen[found.period].monday, found.unit_code)
            sums.setdefault(key, KpiCounts()).add(found.kpis)
    mondays = [week.monday for week in chosen]
    for table in (KpiWeekCount, KpiWeek):
        await connection.execute(
            delete(table).where(or_(table.week_start.in_(mondays), table.week_start < mondays[0]))
        )
    await connection.execute(
        insert(KpiWeek), [{"week_start": monday, "counted_at": now} for monday in mondays]
    )
    if sums:
        await connection.execute(
            insert(KpiWeekCount),
            [
                {"week_start": monday, "unit_code": unit, **_row(counts.result())}
                for (monday, unit), counts in sorted(sums.items())
            ],
        )
    return len(sums)


async def counted_recently(
    connection: AsyncConnection, *, now: datetime, within: timedelta
) -> bool:
    """Whether the weeks of ``now``'s week were counted less than ``within`` ago (by another
    reconciler, say): counting them again so soon would change next to nothing."""
    last = (await connection.execute(select(func.max(KpiWeek.counted_at)))).scalar_one()
    if last is None or now - last >= within:
        return False
    return IsoWeek.containing(last.astimezone(VN_TZ).date()) == IsoWeek.containing(
        now.astimezone(VN_TZ).date()
    )


async def fresh_counts(
    connection: AsyncConnection,
    *,
    weeks: Sequence[IsoWeek],
    now: datetime,
    max_age: timedelta,
) -> StoredCounts:
    """The stored counts of those of ``weeks`` that ended before ``now``, counted after their
    end and at most ``max_age`` ago (none when ``max_age`` is zero)."""
    if max_age <= timedelta(0):
        return StoredCounts({}, None)
    ended = {
        week.monday: index
        for index, week in enumerate(weeks)
        if week.period(as_of=now).end_at <= now
    }
    if not ended:
        return StoredCounts({}, None)
    stored = await connection.execute(
        select(KpiWeek.week_start, KpiWeek.counted_at).where(
            KpiWeek.week_start.in_(sorted(ended)), KpiWeek.counted_at >= now - max_age
        )
    )
    usable = {
        monday: counted_at
        for monday, counted_at in stored.all()
        if counted_at >= weeks[ended[monday]].period(as_of=now).end_at
    }
    if not usable:
        return StoredCounts({}, None)
    by_period: dict[int, list[Counted]] = {ended[monday]: [] for monday in usable}
    rows = await connection.execute(
        select(KpiWeekCount.__table__).where(KpiWeekCount.week_start.in_(sorted(usable)))
    )
    for row in rows.all():
        index = ended[row.week_start]
        by_period[index].append(Counted(row.unit_code, index, _kpis(row)))
    return StoredCounts(by_period, min(usable.values()))


def _row(kpis: UnitKpis) -> dict[str, int]:
    return {name: getattr(kpis, name) for name in _COUNTS}


def _kpis(row: Any) -> UnitKpis:
    return UnitKpis(**{name: getattr(row, name) for name in _COUNTS})
