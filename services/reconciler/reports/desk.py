"""The desk's register page (contract §6): one scan, one report, at most one a day per dossier
and kind; the officer who recorded it may take it back for a while.

Reports recorded here go through :func:`services.reconciler.reports.service.store_report`, the
API's own write path, so a scan at the desk and a report posted by a one-stop system are the
same row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, Literal

from sqlalchemy import ColumnElement, Select, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconciler import schedule
from services.reconciler.reports.schemas import FieldReportCreate, RegisterEntryRead, ReportKind
from services.reconciler.reports.service import (
    ROW_SELECT,
    FieldReportRow,
    store_report,
    stored_by_id,
)
from shared.clock import VN_TZ
from shared.models import Dossier, FieldReport, Officer

DeskOutcome = Literal["recorded", "already"]
WithdrawOutcome = Literal["withdrawn", "not_found", "not_author", "too_late"]
# How long the desk officer who recorded a report may take it back from the register page.
DESK_WITHDRAWAL_WINDOW: Final = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class DeskRecord:
    outcome: DeskOutcome
    entry: RegisterEntryRead  # the new report, or the one already recorded that day


@dataclass(frozen=True, slots=True)
class Withdrawal:
    outcome: WithdrawOutcome
    report: FieldReportRow | None


def vietnam_day(moment: datetime) -> tuple[datetime, datetime]:
    """The Vietnam calendar day holding ``moment``, as a half-open UTC interval."""
    day = moment.astimezone(VN_TZ).date()
    start = datetime.combine(day, time(), tzinfo=VN_TZ)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def desk_report_id(*, unit_code: str, dossier_code: str, kind: str, day: date) -> str:
    """The deterministic ``report_id`` of a scan at the desk: one per unit, dossier, kind and
    Vietnam day, so a double submit (or two tabs) stores one report."""
    canonical = "\x1f".join((unit_code, dossier_code, kind, day.isoformat()))
    return "web-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def withdrawable(
    entry: RegisterEntryRead | FieldReportRow, *, officer: str, unit_code: str, now: datetime
) -> bool:
    """Only the officer who recorded a report, at the desk of its unit, may withdraw it, within
    the window (pure): an officer moved to another unit, or named on a report of another desk,
    may not."""
    return (
        entry.officer == officer
        and entry.unit_code == unit_code
        and now <= entry.received_at + DESK_WITHDRAWAL_WINDOW
    )


def _register_select() -> Select[Any]:
    return (
        select(
            *ROW_SELECT,
            Dossier.code.is_not(None).label("known"),
            Dossier.procedure_name,
            Officer.full_name,
        )
        .select_from(FieldReport)
        .outerjoin(Dossier, Dossier.code == FieldReport.dossier_code)
        .outerjoin(Officer, Officer.account == FieldReport.officer)
    )


def _entry(row: Any) -> RegisterEntryRead:
    return RegisterEntryRead(
        report_id=row.report_id,
        dossier_code=row.dossier_code,
        kind=row.kind,
        occurred_at=row.occurred_at,
        received_at=row.received_at,
        officer=row.officer,
        officer_name=row.full_name or row.officer,
        unit_code=row.unit_code,
        channel=row.channel,
        known=bool(row.known),
        procedure_name=row.procedure_name,
    )


async def _entries(
    connection: AsyncConnection, *conditions: ColumnElement[bool]
) -> list[RegisterEntryRead]:
    statement = _register_select().where(*conditions)
    ordered = statement.order_by(FieldReport.occurred_at.desc(), FieldReport.report_id.desc())
    return [_entry(row) for row in (await connection.execute(ordered)).all()]


async def register_of_day(
    connection: AsyncConnection, *, units: Collection[str], now: datetime
) -> list[RegisterEntryRead]:
    """The reports of ``units`` that happened on ``now``'s Vietnam day, newest first."""
    if not units:
        return []
    start, end = vietnam_day(now)
    return await _entries(
        connection,
        FieldReport.unit_code.in_(sorted(units)),
        FieldReport.occurred_at >= start,
        FieldReport.occurred_at < end,
    )


async def register_entry(connection: AsyncConnection, report_id: str) -> RegisterEntryRead | None:
    """One report as a line of the register, or None when there is no such report."""
    found = await _entries(connection, FieldReport.report_id == report_id)
    return found[0] if found else None


async def record_at_desk(
    connection: AsyncConnection,
    *,
    dossier_code: str,
    kind: ReportKind,
    officer: str,
    unit_code: str,
    now: datetime,
) -> DeskRecord:
    """Record a scan at the desk, now; the same dossier and kind the same day (through any
    channel) records nothing new and answers the report already there."""
    start, end = vietnam_day(now)
    earlier = await _entries(
        connection,
        FieldReport.unit_code == unit_code,
        FieldReport.dossier_code == dossier_code,
        FieldReport.kind == kind,
        FieldReport.occurred_at >= start,
        FieldReport.occurred_at < end,
    )
    if earlier:
        return DeskRecord("already", earlier[-1])  # the first of the day
    report = FieldReportCreate(
        report_id=desk_report_id(
            unit_code=unit_code,
            dossier_code=dossier_code,
            kind=kind,
            day=now.astimezone(VN_TZ).date(),
        ),
        dossier_code=dossier_code,
        kind=kind,
        occurred_at=now,
        officer=officer,
        unit_code=unit_code,
    )
    stored = await store_report(connection, report, channel="web", now=now)
    entry = await register_entry(connection, stored.stored.report_id)
    assert entry is not None  # just stored, or stored by a concurrent submit of the same scan
    return DeskRecord("recorded" if stored.outcome == "accepted" else "already", entry)


async def withdraw_at_desk(
    connection: AsyncConnection,
    *,
    report_id: str,
    dossier_code: str,
    officer: str,
    unit_code: str,
    now: datetime,
) -> Withdrawal:
    """Delete a report of ``dossier_code`` its author recorded less than
    :data:`DESK_WITHDRAWAL_WINDOW` ago, and have the dossier judged again (what the report
    opened then resolves by itself)."""
    found = (await stored_by_id(connection, [report_id])).get(report_id)
    if found is None or found.dossier_code != dossier_code:
        return Withdrawal("not_found", None)
    if found.officer != officer or found.unit_code != unit_code:
        return Withdrawal("not_author", found)
    if not withdrawable(found, officer=officer, unit_code=unit_code, now=now):
        return Withdrawal("too_late", found)
    deleted = await connection.execute(
        delete(FieldReport).where(FieldReport.report_id == report_id)
    )
    if not deleted.rowcount:  # withdrawn meanwhile by a concurrent request
        return Withdrawal("not_found", None)
    await schedule.mark_for_reconcile(connection, [found.dossier_code], at=now)
    return Withdrawal("withdrawn", found)
