"""What the forms need of one dossier, read from the database; the builders stay pure.

A dossier has forms when doisoat knows it the way the dossier page does (a snapshot or step
from the system, or a desk report); the answer carries the unit whose officers may read it,
chosen as the page chooses it, so the downloads are scoped exactly like the page.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconciler.dossiers import service as dossiers_service
from services.reconciler.forms.apology import ApologyFacts, is_overdue
from services.reconciler.forms.control_sheet import ControlSheet, HandOff, hand_offs
from services.reconciler.forms.official import Agency
from services.reconciler.lateness import service as lateness_service
from services.reconciler.reports import service as reports_service
from shared.calendar import WorkingCalendar
from shared.directory import Directory
from shared.dvcqg import agency_of_dossier_code, due_date_of
from shared.models import Dossier, Officer, Unit

Form = TypeVar("Form")


@dataclass(frozen=True, slots=True)
class Found(Generic[Form]):
    """A dossier's form, with what the workspace checks before handing it out."""

    scope_unit: str  # whose officers may read it: DonViXuLy, else the desk's unit, else prefix
    overdue: bool  # as OVERDUE_NO_APOLOGY judges it now: form 04 is meaningful
    form: Form


@dataclass(frozen=True, slots=True)
class _Known:
    dossier: Dossier | None
    scope_unit: str
    overdue: bool


async def _known(connection: AsyncConnection, code: str, *, now: datetime) -> _Known | None:
    dossier = await dossiers_service.get_dossier(connection, code)
    reports = (await reports_service.reports_for(connection, [code]))[code]
    if dossier is None and not reports:
        return None
    # As the dossier page (and the reconciler) assign it: the system's unit, else the desk's.
    scope_unit = (
        (dossier.unit_code if dossier else None)
        or (reports[-1].unit_code if reports else None)
        or agency_of_dossier_code(code)
    )
    overdue = dossier is not None and is_overdue(
        dossier.status, dossier.due_at, desk_reported=bool(reports), now=now
    )
    return _Known(dossier, scope_unit, overdue)


async def apology_of(
    connection: AsyncConnection, code: str, *, now: datetime, directory: Directory
) -> Found[ApologyFacts] | None:
    """Form 04's facts of dossier ``code`` (None: doisoat never heard of it). The applicant's
    name is whole — the letter is addressed to them —, so only roles that see it may be given
    it; the ID number is never read."""
    known = await _known(connection, code, now=now)
    if known is None:
        return None
    dossier = known.dossier
    snapshot = (dossier.snapshot if dossier else None) or {}
    applicant = snapshot.get("ChuHoSo")
    facts = ApologyFacts(
        code=code,
        agency=await _agency(connection, directory, known.scope_unit),
        applicant=(applicant.strip() or None) if isinstance(applicant, str) else None,
        procedure_name=dossier.procedure_name if dossier else None,
        received_at=dossier.received_at if dossier else None,
        due=due_date_of(snapshot),
    )
    return Found(known.scope_unit, known.overdue, facts)


async def control_sheet_of(
    connection: AsyncConnection,
    code: str,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    directory: Directory,
) -> Found[ControlSheet] | None:
    """Form 06 of dossier ``code``, rebuilt from its steps (None: never heard of it; no rows
    while the system has sent none)."""
    known = await _known(connection, code, now=now)
    if known is None:
        return None
    dossier = known.dossier
    timing = await lateness_service.timing_of(connection, code, now=now, directory=directory)
    rows: tuple[HandOff, ...] = ()
    if timing is not None:
        rows = hand_offs(
            timing.steps,
            end=timing.end,
            ended=timing.ended,
            status=timing.status,
            names=await _names(connection, {step.officer or "" for step in timing.steps}),
            calendar=calendar,
        )
    sheet = ControlSheet(
        code=code,
        agency=await _agency(connection, directory, known.scope_unit),
        procedure_name=dossier.procedure_name if dossier else None,
        received_at=dossier.received_at if dossier else None,
        due_at=dossier.due_at if dossier else None,
        made_at=now,
        rows=rows,
    )
    return Found(known.scope_unit, known.overdue, sheet)


async def _agency(connection: AsyncConnection, directory: Directory, scope_unit: str) -> Agency:
    """The unit answering for the dossier today (through ``replaced_by``) under its parent, by
    the directory's names (a unit the directory does not name is written by its code)."""
    unit = directory.answering_unit(scope_unit) or scope_unit
    parent = directory.parents.get(unit)
    rows = await connection.execute(
        select(Unit.code, Unit.name).where(Unit.code.in_([unit, *([parent] if parent else [])]))
    )
    names = {found_code: name for found_code, name in rows.all() if name}
    return Agency(names.get(unit, unit), names.get(parent) if parent else None)


async def _names(connection: AsyncConnection, accounts: Collection[str]) -> dict[str, str]:
    """Officers' full names by account, for those the directory knows."""
    wanted = sorted(account for account in accounts if account)
    if not wanted:
        return {}
    rows = await connection.execute(
        select(Officer.account, Officer.full_name).where(Officer.account.in_(wanted))
    )
    return {account: name for account, name in rows.all()}
