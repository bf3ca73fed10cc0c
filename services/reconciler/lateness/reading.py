"""What §7's arithmetic reads of late dossiers, from the database: their rows and ends, their
steps and the parts of their snapshots that tell the apologies.

A period's late dossiers are found in SQL first (a due date, and an end stamp after it or still
open past it), so only they travel to Python with their steps; §7's arithmetic then runs on the
calendar exactly as for one dossier.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime
from typing import Any, Final, NamedTuple

from sqlalchemy import and_, case, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconciler.kpis.formulas import KpiInput, end_moment
from services.reconciler.lateness.formulas import Accounted, StepFacts, accounted, lateness
from shared.calendar import WorkingCalendar
from shared.db import among
from shared.dvcqg import OPEN_STATUSES, RESCHEDULE_LISTS, Status
from shared.models import Dossier, DossierStatusSeen, ProgressStep

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
DOSSIER_COLUMNS = (
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
    Dossier.snapshot_emitted_at,  # stored figures hold for the snapshot they were computed from
    _FIRST_SEEN,
)


def end_of(row: Any, now: datetime) -> datetime:
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


async def steps_of(
    connection: AsyncConnection, codes: Collection[str]
) -> dict[str, list[StepFacts]]:
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


class LateDossier(NamedTuple):
    """A late dossier's row (``DOSSIER_COLUMNS``, and its stored figures when read with them)
    and its end, or now while open."""

    row: Any
    end: datetime


def maybe_late(now: datetime) -> Any:
    """The SQL side of §7's test: a due date, and an end stamp after it or still open past it
    (the exact test compares §4's end, :func:`end_of`, with the due date, in Python)."""
    due = Dossier.due_at
    return and_(
        due.is_not(None),
        or_(
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
        ),
    )


def ended(row: Any) -> bool:
    """The dossier has ended (§4): its lateness no longer moves with the clock."""
    return row.status is not None and row.status not in OPEN_STATUSES


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


async def account_for(
    connection: AsyncConnection, late: Collection[LateDossier], *, calendar: WorkingCalendar
) -> dict[str, tuple[Accounted, int]]:
    """§7's arithmetic for late dossiers, from their steps and snapshots (two queries): each
    one's figures for the report, and the number of steps they were computed from."""
    codes = [row.code for row, _ in late]
    steps = await steps_of(connection, codes)
    snapshots = await _apology_facts(connection, codes)
    found: dict[str, tuple[Accounted, int]] = {}
    for row, end in late:
        own = steps.get(row.code, [])
        timing = lateness(own, due_at=row.due_at, end=end, unit_code=None, calendar=calendar)
        figures = accounted(timing, due_at=row.due_at, snapshot=snapshots.get(row.code) or {})
        found[row.code] = (figures, len(own))
    return found
