"""Judging dossiers in the database: claim due work, apply the rules, write what changed.

One call of :func:`reconcile` is one chunk of dossiers in the caller's transaction: their facts,
desk reports and unresolved discrepancies are loaded with one query each, the pure rules decide,
the schedule says when each dossier must be judged again, and the differences are written
set-based (open, update severity in place, resolve), each with a history row.

PostgreSQL runs on another core than this process: while it answers one of the chunk's
statements, the Python work that does not need that answer runs (:func:`_meanwhile`), so a
chunk costs nearer the longer of the two than their sum."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import delete, insert, literal, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconciler import rules, schedule, writes
from services.reconciler.facts import is_open
from services.reconciler.lateness import stored as stored_lateness
from services.reconciler.marks import deadlines_of
from services.reconciler.rules import DeskReport, DossierFacts, Finding, RuleSettings
from services.reconciler.writes import Action, Change
from shared.calendar import WorkingCalendar
from shared.date_marks import COLUMNS as MARK_COLUMNS
from shared.date_marks import DateMarks
from shared.db import UTCDateTime, among, meanwhile
from shared.dvcqg import agency_of_dossier_code
from shared.models import (
    Discrepancy,
    Dossier,
    FieldReport,
    ReconcileSchedule,
)
from shared.vocabulary import STATUS_NAMES

UNRESOLVED = ("open", "acknowledged")


@dataclass(slots=True)
class Judgement:
    """What one reconcile pass over some dossiers did: how many it judged, what it changed."""

    evaluated: int = 0
    changes: list[Change] = field(default_factory=list)

    def count(self, action: Action) -> int:
        return sum(1 for change in self.changes if change.action == action)


@dataclass(frozen=True, slots=True)
class _Report:
    desk: DeskReport
    unit_code: str
    received_at: datetime


async def reschedule_all(connection: AsyncConnection, *, now: datetime) -> None:
    """Ask for every known dossier to be judged again (after thresholds or office hours change).

    On PostgreSQL the old marks are truncated rather than deleted: a million dead rows would
    also stay in the ``check_at`` index that every claim walks until the next vacuum. TRUNCATE
    waits for the reconcilers' open chunks and holds new claims until this commits.
    """
    if connection.dialect.name == "postgresql":
        await connection.execute(text("TRUNCATE reconcile_schedule"))
    else:
        await connection.execute(delete(ReconcileSchedule))
    codes = select(Dossier.code).union(select(FieldReport.dossier_code)).subquery()
    await connection.execute(
        insert(ReconcileSchedule).from_select(
            ["dossier_code", "check_at"], select(codes.c[0], _literal_time(now))
        )
    )


def _literal_time(now: datetime) -> Any:
    return literal(now, UTCDateTime())


# What the rules read of a dossier, in the order :func:`facts_of` unpacks them: by position, as
# a sweep reads a million rows (by name, each value cost a lookup).
FACT_COLUMNS = (
    Dossier.code,
    Dossier.status,
    Dossier.due_at,
    Dossier.finished_at,
    Dossier.returned_at,
    Dossier.received_at,
    Dossier.due_source_at,
    Dossier.snapshot_emitted_at,
    Dossier.latest_step_at,
    *(getattr(Dossier, name) for name in MARK_COLUMNS),
)
_MARKS_AT = 9  # the date marks' first position in FACT_COLUMNS
_MARKS_END = _MARKS_AT + len(MARK_COLUMNS)
# Marks are known (the dossier was ingested since they exist) when one of them was seen: any
# of these positions holds a datetime (always true) rather than None.
_SEEN_AT = itemgetter(*(i for i, name in enumerate(MARK_COLUMNS) if name.endswith("_seen_at")))
# What the writes read besides (the discrepancies follow the dossier's holder).
_CONTEXT_COLUMNS = (Dossier.unit_code, Dossier.field_name, Dossier.responsible)


def facts_of(row: Sequence[Any]) -> DossierFacts:
    """The rules' facts from a row of :data:`FACT_COLUMNS` (and whatever follows them)."""
    (
        code,
        status,
        due_at,
        finished_at,
        returned_at,
        received_at,
        due_source_at,
        snapshot_at,
        step_at,
    ) = row[:_MARKS_AT]
    if snapshot_at is None or (step_at is not None and step_at > snapshot_at):
        last_activity = step_at
    else:
        last_activity = snapshot_at
    marks = row[_MARKS_AT:_MARKS_END]
    known = any(_SEEN_AT(marks))
    return DossierFacts(
        code,
        status,
        due_at,
        finished_at,
        returned_at,
        last_activity,
        received_at,
        snapshot_at=snapshot_at,
        due_source_at=due_source_at,
        date_marks=DateMarks(*marks) if known else None,
    )


_REPORT_COLUMNS = (
    FieldReport.dossier_code,
    FieldReport.report_id,
    FieldReport.kind,
    FieldReport.occurred_at,
    FieldReport.officer,
    FieldReport.unit_code,
    FieldReport.received_at,
)
_DISCREPANCY_COLUMNS = (
    Discrepancy.id,
    Discrepancy.dossier_code,
    Discrepancy.kind,
    Discrepancy.severity,
    Discrepancy.details,
    Discrepancy.unit_code,
    Discrepancy.field_name,
    Discrepancy.responsible,
)


_CUSTOM_PLANS = text("SET LOCAL plan_cache_mode = force_custom_plan")
_DEFAULT_PLANS = text("SET LOCAL plan_cache_mode TO DEFAULT")


async def _custom_plans(connection: AsyncConnection, on: bool) -> None:
    """Plan the discrepancy statements afresh each time (PostgreSQL; this transaction only).

    The discrepancies table grows from nothing during a first sweep, and a generic plan cached
    while it was small stays a seq scan at tens of thousands of rows until the next ANALYZE:
    in the unresolved load (where it also searches the 1,000 codes linearly for every row:
    0.6 s a chunk at 50,000 discrepancies) and in the foreign key check of each history row
    (80 ms a chunk). A custom plan costs well under a millisecond. The other statements keep
    their generic plans: custom planning of a 1,000-element ``= ANY`` costs more than it saves.
    """
    if connection.dialect.name == "postgresql":
        await connection.execute(_CUSTOM_PLANS if on else _DEFAULT_PLANS)


async def _load_dossiers(connection: AsyncConnection, codes: Collection[str]) -> dict[str, Any]:
    """The chunk's dossiers: only the columns the rules and the writes need (not the snapshot
    document)."""
    rows = await connection.execute(
        select(*FACT_COLUMNS, *_CONTEXT_COLUMNS).where(among(connection, Dossier.code, codes))
    )
    return {row[0]: row for row in rows.all()}


async def _load_reports(
    connection: AsyncConnection, codes: Collection[str]
) -> dict[str, list[_Report]]:
    reports: dict[str, list[_Report]] = defaultdict(list)
    rows = await connection.execute(
        select(*_REPORT_COLUMNS).where(among(connection, FieldReport.dossier_code, codes))
    )
    for row in rows.all():
        desk = DeskReport(row.report_id, row.kind, row.occurred_at, row.officer)
        reports[row.dossier_code].append(_Report(desk, row.unit_code, row.received_at))
    return reports


async def _load_unresolved(
    connection: AsyncConnection, codes: Collection[str]
) -> dict[str, dict[str, Any]]:
    """The chunk's unresolved discrepancies by dossier and kind (with custom plans on)."""
    unresolved: dict[str, dict[str, Any]] = defaultdict(dict)
    rows = await connection.execute(
        select(*_DISCREPANCY_COLUMNS).where(
            among(connection, Discrepancy.dossier_code, codes),
            # A literal, not a parameter: only then can a generic plan use the partial
            # unique index, whose predicate is ``status <> 'resolved'``.
            Discrepancy.status != literal_column("'resolved'"),
        )
    )
    for row in rows.all():
        unresolved[row.dossier_code][row.kind] = row
    return unresolved


def _resolution(dossier: Any) -> str:
    if dossier is None or dossier.status is None:
        return "Tự động đóng: điều kiện không còn đúng."
    status = f"{dossier.status} ({STATUS_NAMES.get(dossier.status, '?')})"
    return f"Tự động đóng: điều kiện không còn đúng; trạng thái trên hệ thống: {status}."


async def reconcile(
    connection: AsyncConnection,
    codes: Sequence[str],
    *,
    now: datetime,
    calendar: WorkingCalendar,
    settings: RuleSettings,
    claimed: Mapping[str, datetime] | None = None,
    delivered_until: datetime | None = rules.EVERYTHING_DELIVERED,
) -> Judgement:
    """Judge ``codes`` at ``now`` and write the differences; the caller owns the transaction.

    ``claimed`` holds the schedule marks the caller claimed: the next mark only replaces a mark
    that is still the claimed one, so new facts marked meanwhile are never forgotten.
    ``delivered_until`` is the ingest watermark (None: unknown): a finding the rules hold
    until it passes keeps a discrepancy already open and opens none.
    """
    outcome = Judgement(evaluated=len(codes))
    if not codes:
        return outcome
    dossiers = await _load_dossiers(connection, codes)
    async with meanwhile(_load_reports(connection, codes)) as reports_loaded:
        judged = {code: facts_of(row) for code, row in dossiers.items()}
        deadlines = {
            code: deadlines_of(facts, calendar=calendar, settings=settings)
            for code, facts in judged.items()
            if is_open(facts)
        }
        reports = await reports_loaded
    await _custom_plans(connection, True)  # until the discrepancy writes are done
    async with meanwhile(_load_unresolved(connection, codes)) as unresolved_loaded:
        no_reports: list[_Report] = []
        verdicts = {
            code: rules.judge(
                judged.get(code),
                [report.desk for report in reports.get(code, no_reports)],
                now=now,
                calendar=calendar,
                settings=settings,
                delivered_until=delivered_until,
                deadlines=deadlines.get(code),
            )
            for code in codes
        }
        unresolved = await unresolved_loaded
    next_checks = {
        code: None
        if verdict.next_check is None
        else schedule.NextCheck(verdict.next_check, verdict.waits_for_watermark)
        for code, verdict in verdicts.items()
    }
    async with meanwhile(
        schedule.set_next_checks(connection, next_checks, claimed or {})
    ) as scheduled:
        to_open, to_update, to_resolve = _differences(verdicts, dossiers, reports, unresolved)
        await scheduled
    outcome.changes.extend(await writes.open_findings(connection, to_open, now=now))
    outcome.changes.extend(await writes.update_findings(connection, to_update, now=now))
    outcome.changes.extend(await writes.resolve(connection, to_resolve, now=now))
    await _custom_plans(connection, False)
    await stored_lateness.refresh(connection, judged, now=now, calendar=calendar)
    return outcome


def _differences(
    verdicts: Mapping[str, rules.Verdict],
    dossiers: Mapping[str, Any],
    reports: Mapping[str, list[_Report]],
    unresolved: Mapping[str, dict[str, Any]],
) -> tuple[
    list[tuple[str, Finding, dict[str, Any]]],
    list[tuple[Any, Finding, writes.Holder]],
    list[tuple[Any, str]],
]:
    """What to open, update in place and resolve so that the unresolved discrepancies say what
    the verdicts say."""
    to_open: list[tuple[str, Finding, dict[str, Any]]] = []
    to_update: list[tuple[Any, Finding, writes.Holder]] = []
    to_resolve: list[tuple[Any, str]] = []
    for code, verdict in verdicts.items():
        findings = verdict.findings
        current = unresolved.get(code)
        if not findings and not current:
            continue  # the common case: nothing wrong, nothing was
        current = current or {}
        row = dossiers.get(code)
        context = _context(code, row, _latest(reports.get(code, [])))
        # Discrepancies follow the dossier's hand-offs (contract §1: the latest step's handler).
        holder = writes.Holder(context["responsible"], context["unit_code"], context["field_name"])
        for finding in findings:
            existing = current.get(finding.kind.value)
            if existing is None:
                if finding.held:
                    continue  # the stream is behind the desk: open nothing yet
                to_open.append((code, finding, context))
            elif (
                existing.severity != finding.severity.value
                or existing.details != finding.details
                or (existing.responsible, existing.unit_code, existing.field_name)
                != (holder.responsible, holder.unit_code, holder.field_name)
            ):
                to_update.append((existing, finding, holder))
        found_kinds = {finding.kind.value for finding in findings}
        to_resolve.extend(
            (existing, _resolution(row))
            for kind, existing in current.items()
            if kind not in found_kinds
        )
    return to_open, to_update, to_resolve


def _latest(reports: Sequence[_Report]) -> _Report | None:
    latest = rules.latest_report([report.desk for report in reports])
    return next((report for report in reports if report.desk is latest), None)


def _context(code: str, dossier: Any, report: _Report | None) -> dict[str, Any]:
    unit = dossier.unit_code if dossier is not None else None
    if unit is None and report is not None:
        unit = report.unit_code
    return {
        "unit_code": unit or agency_of_dossier_code(code),
        "responsible": dossier.responsible if dossier is not None else None,
        "field_name": dossier.field_name if dossier is not None else None,
        "reporter": report.desk.officer if report is not None else None,
        "report_received_at": report.received_at if report is not None else None,
    }
