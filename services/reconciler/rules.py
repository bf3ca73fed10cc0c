"""The seven discrepancy rules of contract §4, as pure functions of facts, desk reports and now.

No I/O and no clock: the reconciler's sweep and the API judge a dossier the same way, and the
precomputed marks (``due_soon_from``, ``stall_mark``, ``next_change``) let a sweep over a million
dossiers select only those whose answer can have changed, with an indexed query.

Conventions:
- every ``since`` and every mark is a UTC instant that depends on the facts alone, never on
  ``now``, so a finding re-evaluated later is equal to the first one;
- ``details`` hold no value derived from ``now`` either, for the same reason;
- findings are sorted by ``kind`` value (alphabetical, as ``ORDER BY kind`` would sort them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from services.reconciler.facts import (
    EVERYTHING_DELIVERED,
    NOT_RETURNED_STATUSES,
    TICK,
    DeskReport,
    DossierFacts,
    Finding,
    RuleSettings,
    Verdict,
    as_utc,
    is_open,
    iso_in,
    latest_report,
    minutes_of,
    report_details,
)
from services.reconciler.marks import (
    Deadlines,
    deadlines_of,
    due_soon_from,
    due_soon_window,
    grace_end,
    judged_from,
    overdue_from,
    stall_mark,
)
from services.reconciler.rewrites import dates_rewritten
from shared.calendar import WorkingCalendar
from shared.dvcqg import TERMINAL_STATUSES, Status
from shared.vocabulary import Kind, Severity

# Bumped whenever a rule's meaning changes: the reconcilers then judge every dossier again
# (services/reconciler/rejudge.py), as after a change of settings.
# 2: one boundary convention (strictly after grace and due date), TIME_MISMATCH's tolerance on
#    NgayKetThucXuLy, desk reports waiting for the ingest watermark.
# 3: the due-soon window is at most a quarter of the dossier's allowed working time.
# 4: DATES_REWRITTEN.
# 5: each ended late dossier's lateness stored when judged (services/reconciler/lateness/stored.py).
RULES_REVISION = 5

__all__ = [
    "EVERYTHING_DELIVERED",
    "RULES_REVISION",
    "TICK",
    "Deadlines",
    "DeskReport",
    "DossierFacts",
    "Finding",
    "RuleSettings",
    "Verdict",
    "dates_rewritten",
    "deadlines_of",
    "due_soon_from",
    "evaluate",
    "grace_end",
    "judge",
    "judged_from",
    "latest_report",
    "next_change",
    "stall_mark",
]

# ---- the rules -----------------------------------------------------------------------------


def _desk_rules(
    facts: DossierFacts | None,
    report: DeskReport,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    settings: RuleSettings,
) -> list[Finding]:
    """RETURNED_BUT_OPEN, NOT_IN_SYSTEM, TIME_MISMATCH, STATUS_CONFLICT."""
    found: list[Finding] = []
    grace = judged_from(report, settings)
    grace_minutes = minutes_of(settings.return_grace)
    if facts is None:
        if now >= grace:
            details = {**report_details(report, calendar), "grace_minutes": grace_minutes}
            found.append(Finding(Kind.NOT_IN_SYSTEM, Severity.CRITICAL, grace, details))
        return found

    status = facts.status
    if status in NOT_RETURNED_STATUSES and now >= grace:
        severity = Severity.WARNING if status == Status.FINISHED else Severity.CRITICAL
        details = {**_desk_and_system(report, facts, calendar), "grace_minutes": grace_minutes}
        found.append(Finding(Kind.RETURNED_BUT_OPEN, severity, grace, details))

    if report.kind == "returned" and status == Status.RETURNED:
        mismatch = _time_mismatch(facts, report, calendar=calendar, settings=settings)
        if mismatch is not None:
            found.append(mismatch)

    conflict = (report.kind == "returned" and status in TERMINAL_STATUSES) or (
        report.kind == "withdrawn" and status == Status.RETURNED
    )
    if conflict:
        since = as_utc(report.occurred_at)
        details = _desk_and_system(report, facts, calendar)
        found.append(Finding(Kind.STATUS_CONFLICT, Severity.WARNING, since, details))
    return found


def _desk_and_system(
    report: DeskReport, facts: DossierFacts, calendar: WorkingCalendar
) -> dict[str, Any]:
    """What each side says; built only for a finding (most dossiers a sweep judges have none)."""
    return {
        **report_details(report, calendar),
        "system_status": facts.status,
        "finished_at": iso_in(facts.finished_at, calendar),
        "returned_at": iso_in(facts.returned_at, calendar),
    }


def _time_mismatch(
    facts: DossierFacts,
    report: DeskReport,
    *,
    calendar: WorkingCalendar,
    settings: RuleSettings,
) -> Finding | None:
    """Both agree it was returned, but the system's dates contradict the desk's moment.

    ``since`` is the latest of the moments compared (desk ``occurred_at``, and ``NgayTra`` /
    ``NgayKetThucXuLy`` when they take part): only once both claims exist is there a mismatch.
    """
    occurred = as_utc(report.occurred_at)
    reasons: list[str] = []
    moments = [occurred]
    difference: float | None = None
    if facts.returned_at is not None:
        returned = as_utc(facts.returned_at)
        difference = minutes_of(returned - occurred)
        if abs(returned - occurred) > settings.time_tolerance:
            reasons.append("returned_at_differs")
            moments.append(returned)
    if (
        facts.finished_at is not None
        and as_utc(facts.finished_at) - occurred > settings.time_tolerance
    ):
        reasons.append("finished_after_desk_return")
        moments.append(as_utc(facts.finished_at))
    if not reasons:
        return None
    details = {
        **report_details(report, calendar),
        "system_status": facts.status,
        "returned_at": iso_in(facts.returned_at, calendar),
        "finished_at": iso_in(facts.finished_at, calendar),
        "difference_minutes": difference,
        "tolerance_minutes": minutes_of(settings.time_tolerance),
        "reasons": reasons,
    }
    return Finding(Kind.TIME_MISMATCH, Severity.WARNING, max(moments), details)


def _time_rules(
    facts: DossierFacts,
    marks: Deadlines,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    settings: RuleSettings,
) -> list[Finding]:
    """OVERDUE_NO_APOLOGY, DUE_SOON, STALLED, for an open dossier no desk report covers."""
    found: list[Finding] = []
    due = marks.due_at
    details: dict[str, Any]
    if due is not None and now > due:
        details = {"system_status": facts.status, "due_at": iso_in(due, calendar)}
        found.append(Finding(Kind.OVERDUE_NO_APOLOGY, Severity.CRITICAL, due, details))
    elif due is not None and marks.due_soon is not None and now >= marks.due_soon:
        # Equivalent to working_time_between(now, due) <= window; the mark is exact.
        window = due_soon_window(due, facts.received_at, calendar=calendar, settings=settings)
        details = {
            "system_status": facts.status,
            "due_at": iso_in(due, calendar),
            "window_minutes": minutes_of(window),
        }
        found.append(Finding(Kind.DUE_SOON, Severity.INFO, marks.due_soon, details))

    if marks.stall is not None and now >= marks.stall:
        details = {
            "system_status": facts.status,
            "last_activity_at": iso_in(facts.last_activity_at, calendar),
            "stall_after_minutes": minutes_of(settings.stall_after),
        }
        found.append(Finding(Kind.STALLED, Severity.WARNING, marks.stall, details))
    return found


def judge(
    facts: DossierFacts | None,
    reports: Sequence[DeskReport],
    *,
    now: datetime,
    calendar: WorkingCalendar,
    settings: RuleSettings,
    delivered_until: datetime | None = EVERYTHING_DELIVERED,
    deadlines: Deadlines | None = None,
) -> Verdict:
    """``evaluate`` and ``next_change`` together, each mark computed once (the sweep's path).

    ``delivered_until`` is the ingest watermark (None: unknown). The rules comparing a desk
    report with the system judge only once it has passed the report's :func:`judged_from`;
    before that their findings are ``held`` and the dossier waits for the watermark.
    ``deadlines`` are the open dossier's :func:`deadlines_of`, when already worked out.
    """
    now = as_utc(now)
    report = latest_report(reports)
    found: list[Finding] = []
    candidates: tuple[datetime | None, ...] = ()
    rewritten = (
        None
        if facts is None or facts.date_marks is None
        else dates_rewritten(facts, calendar=calendar, settings=settings)
    )
    if report is not None:
        # Once the desk has handed it over or taken it back, deadlines and stalls are moot.
        found = _desk_rules(facts, report, now=now, calendar=calendar, settings=settings)
        judged = judged_from(report, settings)
        if delivered_until is None or delivered_until < judged:
            held = [replace(finding, held=True) for finding in found]
            if rewritten is not None:
                held.append(rewritten)
            return Verdict(sorted(held, key=_by_kind), judged, waits_for_watermark=True)
        if facts is None or facts.status in NOT_RETURNED_STATUSES:
            candidates = (judged,)
    elif facts is not None and is_open(facts):
        marks = deadlines or deadlines_of(facts, calendar=calendar, settings=settings)
        found = _time_rules(facts, marks, now=now, calendar=calendar, settings=settings)
        candidates = (marks.due_soon, overdue_from(marks.due_at), marks.stall)
    if rewritten is not None:
        found.append(rewritten)
    if len(found) > 1:
        found.sort(key=_by_kind)
    future = [mark for mark in candidates if mark is not None and mark > now]
    return Verdict(found, min(future, default=None))


def _by_kind(finding: Finding) -> str:
    return finding.kind.value


def evaluate(
    facts: DossierFacts | None,
    reports: Sequence[DeskReport],
    *,
    now: datetime,
    calendar: WorkingCalendar,
    settings: RuleSettings,
) -> list[Finding]:
    """Every discrepancy the dossier holds at ``now``: at most one per kind, sorted by kind."""
    return judge(facts, reports, now=now, calendar=calendar, settings=settings).findings


def next_change(
    facts: DossierFacts | None,
    reports: Sequence[DeskReport],
    *,
    now: datetime,
    calendar: WorkingCalendar,
    settings: RuleSettings,
) -> datetime | None:
    """The earliest moment after ``now`` at which ``evaluate`` may answer differently.

    Only time moves here: a grace period expiring, the due-soon window opening, the due date
    passing, the stall mark. New events or reports call for a fresh evaluation anyway.
    """
    return judge(facts, reports, now=now, calendar=calendar, settings=settings).next_check
