"""Field reports (contract §2): store them idempotently and read them back, in the caller's
transaction.

Writes are set-based: one ``INSERT … ON CONFLICT DO NOTHING RETURNING report_id`` per batch tells
new reports from known ones, one ``SELECT`` fetches the known ones to compare contents, and the
dossiers of new reports are marked for reconciliation in the same transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Final, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconciler import schedule
from services.reconciler.reports.csv_import import COLUMN_OF_FIELD, RegisterRow
from services.reconciler.reports.schemas import (
    FieldReportCreate,
    ImportRead,
    ImportRowRead,
    Reason,
    ReportChannel,
)
from shared.auth import Principal
from shared.db import insert_for
from shared.directory import Directory
from shared.models import FieldReport
from shared.vocabulary import local_iso

Channel = ReportChannel
StoreOutcome = Literal["accepted", "duplicate", "conflict"]

# What makes two reports with one ``report_id`` "the same content" (moments as instants).
CONTENT_FIELDS: Final = ("dossier_code", "kind", "occurred_at", "officer", "unit_code", "note")
CHUNK: Final = 1000  # ids per IN (…) list: far below every driver's parameter limit


@dataclass(frozen=True, slots=True)
class FieldReportRow:
    """A stored field report (every column of ``field_reports``); moments are aware UTC."""

    report_id: str
    dossier_code: str
    kind: str
    occurred_at: datetime
    officer: str
    unit_code: str
    note: str | None
    channel: str
    received_at: datetime


ROW_COLUMNS: Final = tuple(column.name for column in fields(FieldReportRow))
ROW_SELECT: Final = tuple(FieldReport.__table__.c[name] for name in ROW_COLUMNS)


@dataclass(frozen=True, slots=True)
class StoreResult:
    outcome: StoreOutcome
    stored: FieldReportRow
    differing: list[str] = field(default_factory=list)


def differing_fields(report: FieldReportCreate, stored: FieldReportRow) -> list[str]:
    """The content fields where ``report`` and the stored report disagree (pure)."""
    return [name for name in CONTENT_FIELDS if getattr(report, name) != getattr(stored, name)]


def report_read(row: FieldReportRow) -> dict[str, Any]:
    """A stored report as the API shows it: moments in Vietnam time with their offset."""
    return {
        "report_id": row.report_id,
        "dossier_code": row.dossier_code,
        "kind": row.kind,
        "occurred_at": local_iso(row.occurred_at),
        "officer": row.officer,
        "unit_code": row.unit_code,
        "note": row.note,
        "channel": row.channel,
        "received_at": local_iso(row.received_at),
    }


def _stored_row(report: FieldReportCreate, *, channel: Channel, now: datetime) -> FieldReportRow:
    return FieldReportRow(**report.model_dump(), channel=channel, received_at=now)


def _chunks(values: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), CHUNK):
        yield list(values[start : start + CHUNK])


async def _insert_new(connection: AsyncConnection, rows: Sequence[FieldReportRow]) -> set[str]:
    """Insert the reports whose ``report_id`` is unknown; return the ids actually inserted."""
    if not rows:
        return set()
    statement = (
        insert_for(connection, FieldReport)
        .on_conflict_do_nothing(index_elements=["report_id"])
        .returning(FieldReport.report_id)
    )
    returned = await connection.execute(
        statement, [{name: getattr(row, name) for name in ROW_COLUMNS} for row in rows]
    )
    return set(returned.scalars().all())


async def stored_by_id(
    connection: AsyncConnection, report_ids: Iterable[str]
) -> dict[str, FieldReportRow]:
    wanted = sorted(set(report_ids))
    found: dict[str, FieldReportRow] = {}
    for chunk in _chunks(wanted):
        rows = await connection.execute(select(*ROW_SELECT).where(FieldReport.report_id.in_(chunk)))
        for row in rows.mappings():
            found[row["report_id"]] = FieldReportRow(**row)
    return found


async def store_report(
    connection: AsyncConnection, report: FieldReportCreate, *, channel: Channel, now: datetime
) -> StoreResult:
    """Store one report: new (and its dossier marked), duplicate, or a conflicting reuse of id."""
    candidate = _stored_row(report, channel=channel, now=now)
    if await _insert_new(connection, [candidate]):
        await schedule.mark_for_reconcile(connection, [report.dossier_code], at=now)
        return StoreResult("accepted", candidate)
    stored = (await stored_by_id(connection, [report.report_id]))[report.report_id]
    differing = differing_fields(report, stored)
    return StoreResult("conflict" if differing else "duplicate", stored, differing)


def _duplicate_reason(differing: Sequence[str]) -> str | None:
    if not differing:
        return None
    columns = ", ".join(dict.fromkeys(COLUMN_OF_FIELD.get(name, name) for name in differing))
    return (
        f"differs: đã có báo cáo cùng khóa nhưng khác {columns}; giữ bản đã lưu / "
        f"already stored under the same key with another {columns}; the stored one is kept"
    )


def _forbidden(unit_code: str) -> str:
    return (
        f"{Reason.FORBIDDEN_UNIT}: khóa không có quyền với đơn vị {unit_code!r} / "
        f"the key does not cover unit {unit_code!r}"
    )


async def import_register(
    connection: AsyncConnection,
    rows: Sequence[RegisterRow],
    *,
    principal: Principal,
    directory: Directory,
    now: datetime,
) -> ImportRead:
    """Store the good rows of a register at once; answer every row in file order."""
    answers: list[ImportRowRead | None] = []
    first_of: dict[str, FieldReportCreate] = {}  # report_id → its first row in the file
    for item in rows:
        report = item.report
        if not isinstance(report, FieldReportCreate):
            answers.append(ImportRowRead(row=item.row, outcome="refused", reason=str(report)))
        elif not principal.may_act_for(report.unit_code, directory):
            answers.append(
                ImportRowRead(row=item.row, outcome="refused", reason=_forbidden(report.unit_code))
            )
        else:
            first_of.setdefault(report.report_id, report)
            answers.append(None)  # decided once the database has answered

    candidates = [_stored_row(report, channel="csv", now=now) for report in first_of.values()]
    inserted = await _insert_new(connection, candidates)
    reference = {row.report_id: row for row in candidates if row.report_id in inserted}
    reference |= await stored_by_id(connection, set(first_of) - inserted)
    await schedule.mark_for_reconcile(
        connection, {reference[report_id].dossier_code for report_id in inserted}, at=now
    )

    newly_answered: set[str] = set()
    for position, item in enumerate(rows):
        if answers[position] is not None:
            continue
        report = item.report
        assert isinstance(report, FieldReportCreate)
        if report.report_id in inserted and report.report_id not in newly_answered:
            newly_answered.add(report.report_id)
            answers[position] = ImportRowRead(row=item.row, outcome="accepted")
            continue
        reason = _duplicate_reason(differing_fields(report, reference[report.report_id]))
        answers[position] = ImportRowRead(row=item.row, outcome="duplicate", reason=reason)

    final = [answer for answer in answers if answer is not None]
    return ImportRead(
        accepted=sum(1 for answer in final if answer.outcome == "accepted"),
        duplicate=sum(1 for answer in final if answer.outcome == "duplicate"),
        refused=sum(1 for answer in final if answer.outcome == "refused"),
        rows=final,
    )


async def reports_for(
    connection: AsyncConnection, codes: Collection[str]
) -> dict[str, list[FieldReportRow]]:
    """Every stored report of each dossier code (every code asked for is a key), oldest first."""
    found: dict[str, list[FieldReportRow]] = {code: [] for code in codes}
    for chunk in _chunks(sorted(found)):
        rows = await connection.execute(
            select(*ROW_SELECT)
            .where(FieldReport.dossier_code.in_(chunk))
            .order_by(FieldReport.dossier_code, FieldReport.occurred_at, FieldReport.report_id)
        )
        for row in rows.mappings():
            found[row["dossier_code"]].append(FieldReportRow(**row))
    return found
