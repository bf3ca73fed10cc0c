"""Each ended late dossier's figures, stored when the reconciler judges it (contract §7).

A province-month holds thousands of late dossiers; redoing §7's arithmetic for each on every
report cost most of its time. An ended dossier's lateness no longer moves with the clock, so the
reconciler — which judges a dossier whenever its facts change — computes it once and stores it
with the facts it came from. The report uses stored figures only while those facts are
unchanged, and computes the rest (open dossiers, dossiers not judged since their last event,
a database the reconcilers have not yet filled): a stored figure can be missing, never wrong.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconciler.facts import DossierFacts
from services.reconciler.lateness.formulas import Accounted, Apologies
from services.reconciler.lateness.reading import (
    DOSSIER_COLUMNS,
    LateDossier,
    account_for,
    end_of,
    ended,
    maybe_late,
)
from shared.calendar import WorkingCalendar
from shared.db import among, insert_for
from shared.dvcqg import Status
from shared.models import Dossier, DossierLateness, ProgressStep


async def stored_figures(
    connection: AsyncConnection, late: Collection[LateDossier]
) -> dict[str, Accounted]:
    """The stored figures of those of ``late`` that they still describe: the dossier has
    ended, and its due date, end, newest snapshot (the apologies) and steps (append-only: their
    number) are those they were computed from. The others are for the report to compute.

    One query by primary key for the ended ones (not a join in the period's scan: the planner,
    expecting many more late rows than there are, hashed the whole table for it).
    """
    ended_late = {row.code: (row, end) for row, end in late if ended(row)}
    if not ended_late:
        return {}
    steps = (
        select(func.count())
        .select_from(ProgressStep)
        .where(ProgressStep.dossier_code == DossierLateness.dossier_code)
        .scalar_subquery()
    )
    rows = await connection.execute(
        select(
            DossierLateness.dossier_code,
            DossierLateness.due_at,
            DossierLateness.end_at,
            DossierLateness.snapshot_emitted_at,
            DossierLateness.step_count,  # the four facts it was computed from
            steps,
            DossierLateness.overrun_hours,
            DossierLateness.charges,
            DossierLateness.apology_any,
            DossierLateness.apology_late,
        ).where(among(connection, DossierLateness.dossier_code, list(ended_late)))
    )
    found: dict[str, Accounted] = {}
    for code, *computed_from, steps_now, hours, charges, apology_any, apology_late in rows:
        row, end = ended_late[code]
        if computed_from == [row.due_at, end, row.snapshot_emitted_at, steps_now]:
            found[code] = Accounted(hours, charges, Apologies(apology_any, apology_late))
    return found


async def refresh(
    connection: AsyncConnection,
    judged: Mapping[str, DossierFacts],
    *,
    now: datetime,
    calendar: WorkingCalendar,
) -> int:
    """After the reconciler judged these dossiers: store the figures of those that ended late,
    drop those of any whose dates moved it back on time. Judged whenever its facts change, a
    dossier gets them computed again then.

    Read from the facts already loaded first, so that the many dossiers open or ended on time
    cost no query; where they cannot tell (refused, withdrawn, stopped, a missing stamp), the
    store's own query decides. Returns how many figures were stored.
    """
    candidates: list[str] = []
    moved_back: list[str] = []
    for code, facts in judged.items():
        if facts.due_at is None or not ended(facts):
            continue
        if _may_have_ended_late(facts):
            candidates.append(code)
        elif _dates_moved(facts):
            moved_back.append(code)
    if moved_back:
        await _drop(connection, moved_back)
    return await store(connection, candidates, now=now, calendar=calendar)


def _may_have_ended_late(facts: DossierFacts) -> bool:
    due, finished, returned = facts.due_at, facts.finished_at, facts.returned_at
    assert due is not None
    if facts.status == Status.RETURNED and (finished or returned) is not None:
        ends = [stamp for stamp in (finished, returned) if stamp is not None]
        return min(ends) > due  # §4: the earlier of the two stamps
    if facts.status == Status.FINISHED and finished is not None:
        return finished > due
    return True


def _dates_moved(facts: DossierFacts) -> bool:
    """An ended dossier on time that may once have been late: an earlier snapshot promised an
    earlier date or said a later end (the date marks), a reschedule set its due date, or no
    earlier snapshot is known (a dossier ingested before the marks existed)."""
    marks = facts.date_marks
    if marks is None:
        return True
    return (
        facts.due_source_at is not None
        or _later(facts.due_at, marks.base_due_at)
        or _later(marks.finished_max, facts.finished_at)
        or _later(marks.returned_max, facts.returned_at)
    )


def _later(value: datetime | None, than: datetime | None) -> bool:
    return value is not None and (than is None or value > than)


async def _drop(connection: AsyncConnection, codes: Collection[str]) -> None:
    await connection.execute(
        delete(DossierLateness).where(among(connection, DossierLateness.dossier_code, codes))
    )


async def store(
    connection: AsyncConnection,
    codes: Collection[str],
    *,
    now: datetime,
    calendar: WorkingCalendar,
) -> int:
    """Compute and store the figures of those of ``codes`` that ended late, and drop the stored
    figures of the others; the caller owns the transaction. Returns how many were stored."""
    if not codes:
        return 0
    rows = await connection.execute(
        select(*DOSSIER_COLUMNS).where(among(connection, Dossier.code, codes), maybe_late(now))
    )
    late = [
        LateDossier(row, end)
        for row in rows.all()
        if ended(row) and (end := end_of(row, now)) > row.due_at
    ]
    kept = {row.code for row, _ in late}
    gone = [code for code in codes if code not in kept]
    if gone:
        await _drop(connection, gone)
    if not late:
        return 0
    figures = await account_for(connection, late, calendar=calendar)
    values = [_stored_row(row, end, *figures[row.code], now=now) for row, end in late]
    statement = insert_for(connection, DossierLateness)
    await connection.execute(
        statement.on_conflict_do_update(
            index_elements=[DossierLateness.dossier_code],
            set_={name: statement.excluded[name] for name in _UPDATED},
        ),
        values,
    )
    return len(values)


_UPDATED = (
    "due_at",
    "end_at",
    "snapshot_emitted_at",
    "step_count",
    "overrun_hours",
    "charges",
    "apology_any",
    "apology_late",
    "computed_at",
)


def _stored_row(
    row: Any, end: datetime, figures: Accounted, step_count: int, *, now: datetime
) -> dict[str, Any]:
    return {
        "dossier_code": row.code,
        "due_at": row.due_at,
        "end_at": end,
        "snapshot_emitted_at": row.snapshot_emitted_at,
        "step_count": step_count,
        "overrun_hours": figures.overrun_hours,
        "charges": figures.charges,
        "apology_any": figures.apology.any,
        "apology_late": figures.apology.late,
        "computed_at": now,
    }
