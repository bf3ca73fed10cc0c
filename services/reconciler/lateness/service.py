"""Late dossiers from the database: one dossier's lateness, and a period's grouped (§7).

The period's late dossiers come with the figures the reconciler stored for those that ended
(:mod:`services.reconciler.lateness.stored`); §7's arithmetic runs here only for the others,
on the calendar exactly as for one dossier (:mod:`services.reconciler.lateness.reading`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconciler.kpis.formulas import Period
from services.reconciler.kpis.service import holder_names
from services.reconciler.lateness.formulas import Accounted, Lateness, StepFacts, lateness
from services.reconciler.lateness.reading import (
    DOSSIER_COLUMNS,
    LateDossier,
    account_for,
    end_of,
    maybe_late,
    steps_of,
)
from services.reconciler.lateness.stored import stored_figures
from shared.calendar import WorkingCalendar
from shared.db import among
from shared.directory import Directory
from shared.dvcqg import OPEN_STATUSES
from shared.models import Dossier, Unit
from shared.vocabulary import local_iso

GroupBy = Literal["unit", "officer", "field", "procedure"]
GROUPINGS: tuple[GroupBy, ...] = ("unit", "officer", "field", "procedure")


@dataclass(frozen=True, slots=True)
class DossierTiming:
    """What §7's arithmetic reads of one dossier: its steps, due date and end."""

    code: str
    status: int | None
    unit_code: str | None  # the unit answering for it today (through replaced_by)
    due_at: datetime | None  # the effective due date
    end: datetime  # §4's end (the KPIs'), or now while it is open
    ended: bool  # ``end`` is the dossier's own end, not now
    steps: list[StepFacts]


async def timing_of(
    connection: AsyncConnection, code: str, *, now: datetime, directory: Directory
) -> DossierTiming | None:
    """One dossier's steps, due date and end (None when the system never sent it)."""
    row = (await connection.execute(select(*DOSSIER_COLUMNS).where(Dossier.code == code))).first()
    if row is None:
        return None
    return DossierTiming(
        code=code,
        status=row.status,
        unit_code=directory.answering_unit(row.unit_code),
        due_at=row.due_at,
        end=end_of(row, now),
        ended=row.status is not None and row.status not in OPEN_STATUSES,
        steps=(await steps_of(connection, [code])).get(code, []),
    )


async def lateness_of(
    connection: AsyncConnection,
    code: str,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    directory: Directory,
) -> Lateness | None:
    """One dossier's lateness (None when doisoat never heard of it)."""
    timing = await timing_of(connection, code, now=now, directory=directory)
    if timing is None:
        return None
    return lateness(
        timing.steps,
        due_at=timing.due_at,
        end=timing.end,
        unit_code=timing.unit_code,
        calendar=calendar,
    )


@dataclass(slots=True)
class LatenessGroup:
    """One line of ``GET /api/v1/lateness``."""

    key: str
    label: str
    late_dossiers: set[str] = field(default_factory=set)
    overrun_hours: float = 0.0
    without_apology: set[str] = field(default_factory=set)
    late_apology: set[str] = field(default_factory=set)

    def read(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "late_dossiers": len(self.late_dossiers),
            "overrun_working_hours": round(self.overrun_hours, 2),
            "without_apology": len(self.without_apology),
            "late_apology": len(self.late_apology),
        }


async def late_dossiers(
    connection: AsyncConnection,
    *,
    period: Period,
    units: Collection[str] | None,
    now: datetime,
) -> list[LateDossier]:
    """Dossiers received in ``period`` (of ``units``; None: all) that are late (§7)."""
    statement = select(*DOSSIER_COLUMNS).where(
        Dossier.received_at >= period.start_at,
        Dossier.received_at < period.end_at,
        maybe_late(now),
    )
    if units is not None:
        statement = statement.where(among(connection, Dossier.unit_code, sorted(units)))
    found: list[LateDossier] = []
    for row in (await connection.execute(statement)).all():
        end = end_of(row, now)
        if end > row.due_at:
            found.append(LateDossier(row, end))
    return found


@dataclass(frozen=True, slots=True)
class LatenessReport:
    """``GET /api/v1/lateness``'s answer: the groups, most overrun first, and ``total``, the
    late dossiers counted once each (a dossier may count for several officers)."""

    items: list[dict[str, Any]]
    total: int


async def lateness_by(
    connection: AsyncConnection,
    *,
    period: Period,
    units: Collection[str] | None,
    group_by: GroupBy,
    now: datetime,
    calendar: WorkingCalendar,
    directory: Directory,
    officer_names: dict[str, str] | None = None,
) -> LatenessReport:
    """Late dossiers of the period grouped, most overrun first (contract §7).

    An ended dossier's figures are read as the reconciler stored them when they still describe
    it; the others' (open dossiers, and any whose facts changed since) are computed here.
    A group's label is what a leader reads: the unit's name, the officer's full name (from
    ``officer_names`` when given, else from the directory), the procedure's name; the key when
    the directory does not know it.
    """
    late = await late_dossiers(connection, period=period, units=units, now=now)
    figures = await stored_figures(connection, late)
    to_compute = [dossier for dossier in late if dossier.row.code not in figures]
    computed = await account_for(connection, to_compute, calendar=calendar)
    figures.update((code, found) for code, (found, _) in computed.items())
    groups: dict[str, LatenessGroup] = {}
    names = officer_names or {}

    def group(key: str, label: str) -> LatenessGroup:
        return groups.setdefault(key, LatenessGroup(key, label))

    for row, _ in late:
        found = figures[row.code]
        unit = directory.answering_unit(row.unit_code) or ""
        for key, label, hours in _keys(group_by, row, unit, found, names):
            line = group(key, label)
            line.late_dossiers.add(row.code)
            line.overrun_hours += hours
            if not found.apology.any:
                line.without_apology.add(row.code)
            if found.apology.late:
                line.late_apology.add(row.code)
    known: dict[str, str] = {}
    if group_by == "unit":
        known = await unit_names(connection, groups)
    elif group_by == "officer" and officer_names is None:
        known = await holder_names(connection, groups)
    for key, line in groups.items():
        line.label = known.get(key, line.label)
    ordered = sorted(groups.values(), key=lambda g: (-g.overrun_hours, g.key))
    return LatenessReport([line.read() for line in ordered], total=len(late))


def _keys(
    group_by: GroupBy, row: Any, unit: str, found: Accounted, names: dict[str, str]
) -> Iterable[tuple[str, str, float]]:
    """The group(s) a late dossier counts in, with the overrun charged there."""
    if group_by == "unit":
        yield unit, unit, found.overrun_hours
    elif group_by == "field":
        field_name = row.field_name or "(chưa rõ lĩnh vực)"
        yield field_name, field_name, found.overrun_hours
    elif group_by == "procedure":
        code = row.procedure_code or "(chưa rõ thủ tục)"
        yield code, row.procedure_name or code, found.overrun_hours
    else:
        for account, hours in found.charges.items():
            yield account, names.get(account, account), hours


async def unit_names(connection: AsyncConnection, codes: Collection[str]) -> dict[str, str]:
    """The directory's name of each of ``codes`` it knows (one query)."""
    if not codes:
        return {}
    rows = await connection.execute(
        select(Unit.code, Unit.name).where(among(connection, Unit.code, sorted(codes)))
    )
    return {code: name for code, name in rows.all()}


def lateness_read(found: Lateness) -> dict[str, Any]:
    """``lateness`` of ``GET /api/v1/dossiers/{code}`` (contract §7)."""
    return {
        "late": found.late,
        "overrun_working_hours": found.overrun_working_hours,
        "steps": [
            {
                "officer": step.officer,
                "department": step.department,
                "unit_code": step.unit_code,
                "started_at": local_iso(step.started_at),
                "allowed_until": local_iso(step.allowed_until),
                "ended_at": local_iso(step.ended_at),
                "overrun_working_hours": step.overrun_working_hours,
            }
            for step in found.steps
        ],
    }
