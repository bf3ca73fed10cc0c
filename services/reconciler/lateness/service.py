"""Late dossiers from the database: one dossier's lateness, and a period's grouped (§7).

A period's late dossiers are found in SQL first (a due date, and an end stamp after it or still
open past it), so only they travel to Python with their steps; §7's arithmetic then runs on the
calendar exactly as for one dossier.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, NamedTuple

from sqlalchemy import and_, case, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconciler.kpis.formulas import KpiInput, Period, end_moment
from services.reconciler.kpis.service import holder_names
from services.reconciler.lateness.formulas import (
    Lateness,
    StepFacts,
    StepLateness,
    apologies,
    lateness,
)
from shared.calendar import WorkingCalendar
from shared.db import among
from shared.directory import Directory
from shared.dvcqg import OPEN_STATUSES, RESCHEDULE_LISTS, Status
from shared.models import Dossier, DossierStatusSeen, ProgressStep, Unit
from shared.vocabulary import local_iso

GroupBy = Literal["unit", "officer", "field", "procedure"]
GROUPINGS: tuple[GroupBy, ...] = ("unit", "officer", "field", "procedure")
NO_OFFICER = "(chưa có cán bộ)"  # the key of late dossiers no step's officer answers for

# A closed status without its stamp ends at the first snapshot that showed it (§4, the KPIs'
# end): only then is ``dossier_status_seen`` read, one primary-key probe for such a dossier —
# not a join of the whole table (at 1,000,000 dossiers a hash join of it took 300 ms a call).
_FIRST_SEEN = case(
    (
        or_(
            Dossier.status.in_([Status.WITHDRAWN, Status.STOPPED]),
            and_(Dossier.status == Status.FINISHED, Dossier.finished_at.is_(None)),
        ),
        select(DossierStatusSeen.first_emitted_at)
        .where(
            DossierStatusSeen.dossier_code == Dossier.code,
            DossierStatusSeen.status == Dossier.status,
        )
        .scalar_subquery(),
    ),
    else_=None,
).label("first_emitted_at")
_DOSSIER = (
    Dossier.code,
    Dossier.status,
    Dossier.unit_code,
    Dossier.field_name,
    Dossier.procedure_code,
    Dossier.procedure_name,
    Dossier.due_at,
    Dossier.finished_at,
    Dossier.returned_at,
    Dossier.refused_at,
    _FIRST_SEEN,
)


def _end(row: Any, now: datetime) -> datetime:
    facts = KpiInput(
        code=row.code,
        status=row.status,
        channel=None,
        digitised=None,
        received_at=None,
        due_at=row.due_at,
        finished_at=row.finished_at,
        returned_at=row.returned_at,
        refused_at=row.refused_at,
        status_first_seen_at=row.first_emitted_at,
    )
    return end_moment(facts, open_end=now)


async def _steps(connection: AsyncConnection, codes: Collection[str]) -> dict[str, list[StepFacts]]:
    found: dict[str, list[StepFacts]] = defaultdict(list)
    if not codes:
        return found
    rows = await connection.execute(
        select(
            ProgressStep.dossier_code,
            ProgressStep.officer,
            ProgressStep.department,
            ProgressStep.status,
            ProgressStep.started_at,
            ProgressStep.step_at,
            ProgressStep.deadline_at,
        ).where(among(connection, ProgressStep.dossier_code, codes))
    )
    for code, officer, department, status, started_at, step_at, deadline_at in rows.all():
        found[code].append(
            StepFacts(officer, department, status, started_at or step_at, deadline_at)
        )
    return found


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
    row = (await connection.execute(select(*_DOSSIER).where(Dossier.code == code))).first()
    if row is None:
        return None
    return DossierTiming(
        code=code,
        status=row.status,
        unit_code=directory.answering_unit(row.unit_code),
        due_at=row.due_at,
        end=_end(row, now),
        ended=row.status is not None and row.status not in OPEN_STATUSES,
        steps=(await _steps(connection, [code])).get(code, []),
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


class LateDossier(NamedTuple):
    """A late dossier's row (the columns of ``_DOSSIER``) and its end, or now while open."""

    row: Any
    end: datetime


async def late_dossiers(
    connection: AsyncConnection,
    *,
    period: Period,
    units: Collection[str] | None,
    now: datetime,
) -> list[LateDossier]:
    """Dossiers received in ``period`` (of ``units``; None: all) that may be late: a due date,
    and an end stamp after it or still open past it; the exact test is §7's, in Python."""
    due = Dossier.due_at
    maybe_late = or_(
        and_(Dossier.status.in_(sorted(OPEN_STATUSES)), due < now),
        # Returned (10) ends at the earlier of its two stamps: late only if both present are.
        and_(
            Dossier.finished_at > due,
            or_(
                Dossier.status != Status.RETURNED,
                Dossier.returned_at.is_(None),
                Dossier.returned_at > due,
            ),
        ),
        and_(
            Dossier.returned_at > due,
            or_(Dossier.finished_at.is_(None), Dossier.finished_at > due),
        ),
        Dossier.refused_at > due,
        and_(Dossier.status.is_(None), due < now),
        due < _FIRST_SEEN,  # last: the probe only where nothing cheaper said "late"
    )
    statement = select(*_DOSSIER).where(
        Dossier.received_at >= period.start_at,
        Dossier.received_at < period.end_at,
        due.is_not(None),
        maybe_late,
    )
    if units is not None:
        statement = statement.where(among(connection, Dossier.unit_code, sorted(units)))
    found: list[LateDossier] = []
    for row in (await connection.execute(statement)).all():
        end = _end(row, now)
        if end > row.due_at:
            found.append(LateDossier(row, end))
    return found


# What the apologies are read from (:func:`apologies`): the promised date and the two
# reschedule lists, taken out of the stored snapshot by the database rather than the whole
# document decoded in Python.
_APOLOGY_KEYS: Final = ("NgayHenTra", *RESCHEDULE_LISTS)


async def _apology_facts(
    connection: AsyncConnection, codes: Collection[str]
) -> dict[str, dict[str, Any]]:
    """For each of ``codes``, the parts of its snapshot that tell its apologies."""
    if not codes:
        return {}
    parts = [Dossier.snapshot[key] for key in _APOLOGY_KEYS]
    rows = await connection.execute(
        select(Dossier.code, *parts).where(among(connection, Dossier.code, codes))
    )
    return {
        code: {key: value for key, value in zip(_APOLOGY_KEYS, values, strict=True) if value}
        for code, *values in rows.all()
    }


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

    A group's label is what a leader reads: the unit's name, the officer's full name (from
    ``officer_names`` when given, else from the directory), the procedure's name; the key when
    the directory does not know it.
    """
    late = await late_dossiers(connection, period=period, units=units, now=now)
    codes = [row.code for row, _ in late]
    steps = await _steps(connection, codes)
    snapshots = await _apology_facts(connection, codes)
    groups: dict[str, LatenessGroup] = {}
    names = officer_names or {}

    def group(key: str, label: str) -> LatenessGroup:
        return groups.setdefault(key, LatenessGroup(key, label))

    for row, end in late:
        unit = directory.answering_unit(row.unit_code) or ""
        found = lateness(
            steps.get(row.code, []),
            due_at=row.due_at,
            end=end,
            unit_code=unit,
            calendar=calendar,
        )
        said = apologies(snapshots.get(row.code) or {})
        for key, label, hours in _keys(group_by, row, unit, found, names, due_at=row.due_at):
            line = group(key, label)
            line.late_dossiers.add(row.code)
            line.overrun_hours += hours
            if not said.any:
                line.without_apology.add(row.code)
            if said.late:
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
    group_by: GroupBy,
    row: Any,
    unit: str,
    found: Lateness,
    names: dict[str, str],
    *,
    due_at: datetime,
) -> Iterable[tuple[str, str, float]]:
    """The group(s) a late dossier counts in, with the overrun charged there."""
    if group_by == "unit":
        yield unit, unit, found.overrun_working_hours
    elif group_by == "field":
        field_name = row.field_name or "(chưa rõ lĩnh vực)"
        yield field_name, field_name, found.overrun_working_hours
    elif group_by == "procedure":
        code = row.procedure_code or "(chưa rõ thủ tục)"
        yield code, row.procedure_name or code, found.overrun_working_hours
    else:
        charged: dict[str, float] = defaultdict(float)
        for step in found.steps:
            if step.overrun_working_hours > 0:
                charged[step.officer or NO_OFFICER] += step.overrun_working_hours
        if not charged:  # no overrun charged to anyone: the holder at the due date answers
            charged[_holder_at(found.steps, due_at) or NO_OFFICER] += 0.0
        for account, hours in charged.items():
            yield account, names.get(account, account), hours


async def unit_names(connection: AsyncConnection, codes: Collection[str]) -> dict[str, str]:
    """The directory's name of each of ``codes`` it knows (one query)."""
    if not codes:
        return {}
    rows = await connection.execute(
        select(Unit.code, Unit.name).where(among(connection, Unit.code, sorted(codes)))
    )
    return {code: name for code, name in rows.all()}


def _holder_at(steps: Iterable[StepLateness], moment: datetime) -> str | None:
    """The officer of the step that held the dossier at ``moment`` (None: no step did)."""
    return next((step.officer for step in steps if step.started_at <= moment < step.ended_at), None)


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
