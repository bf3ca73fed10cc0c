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
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from shared.calendar import WorkingCalendar
from shared.dvcqg import OPEN_STATUSES, TERMINAL_STATUSES, WAITING_ON_APPLICANT, Status
from shared.vocabulary import Kind, Severity

# Bumped whenever a rule's meaning changes: the reconcilers then judge every dossier again
# (services/reconciler/rejudge.py), as after a change of settings.
# 2: one boundary convention (strictly after grace and due date), TIME_MISMATCH's tolerance on
#    NgayKetThucXuLy, desk reports waiting for the ingest watermark.
# 3: the due-soon window is at most a quarter of the dossier's allowed working time.
RULES_REVISION = 3

# Datetimes have microsecond resolution (Python and PostgreSQL alike): a condition "strictly
# after X" first holds at X + 1 µs, which lets every mark be compared with ``now >= mark``.
TICK = timedelta(microseconds=1)

NOT_RETURNED_STATUSES = OPEN_STATUSES | {Status.FINISHED}


@dataclass(frozen=True, slots=True)
class DossierFacts:
    """What the system says about a dossier (pass ``None`` when doisoat never heard of it)."""

    code: str
    status: int | None  # None when only progress steps are known
    due_at: datetime | None  # effective due date (contract §1)
    finished_at: datetime | None  # NgayKetThucXuLy
    returned_at: datetime | None  # NgayTra
    last_activity_at: datetime | None  # newest snapshot emitted_at / step ThoiDiemXuLy
    received_at: datetime | None = None  # NgayTiepNhan: sizes the due-soon window


@dataclass(frozen=True, slots=True)
class DeskReport:
    """What the one-stop desk recorded: the ground truth the system is checked against."""

    report_id: str
    kind: Literal["returned", "withdrawn"]
    occurred_at: datetime
    officer: str


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """The thresholds the rules judge with; built from ``ReconcilerSettings`` (their defaults)."""

    return_grace: timedelta  # wall-clock
    time_tolerance: timedelta  # wall-clock
    due_soon_window: timedelta  # working time
    stall_after: timedelta  # working time


@dataclass(frozen=True, slots=True)
class Finding:
    kind: Kind
    severity: Severity
    since: datetime  # when the condition began (grace expiry, due date, stall mark…)
    details: dict[str, Any]  # JSON-serialisable
    # The stream has not yet delivered up to the moment this desk report may be judged: an
    # open discrepancy of this kind is kept, none is opened (contract §4).
    held: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """What :func:`judge` says of one dossier at ``now``."""

    findings: list[Finding]
    # The next moment the answer may change; with ``waits_for_watermark`` it is the moment the
    # ingest watermark must pass (a desk report waiting for the system's data), not the clock.
    next_check: datetime | None
    waits_for_watermark: bool = False


# The watermark when every fact was delivered: HTTP-only ingest, and the pure rules' default.
EVERYTHING_DELIVERED = datetime.max.replace(tzinfo=UTC)


# ---- helpers -------------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is UTC:  # what the database hands back: nothing to convert
        return moment
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"datetimes must be timezone-aware, got naive {moment!r}")
    return moment.astimezone(UTC)


def _iso(moment: datetime | None, calendar: WorkingCalendar) -> str | None:
    """ISO 8601 with the local offset: what an officer reading the details expects."""
    return None if moment is None else moment.astimezone(calendar.tz).isoformat()


def _minutes(delta: timedelta) -> float:
    return round(delta.total_seconds() / 60, 2)


def latest_report(reports: Sequence[DeskReport]) -> DeskReport | None:
    """The report that counts: latest by (occurred_at, report_id), whatever the list order."""
    if not reports:
        return None
    if len(reports) == 1:
        return reports[0]
    return max(
        reports,
        key=lambda r: (_utc(r.occurred_at), r.report_id, r.kind, r.officer),
    )


def _report_details(report: DeskReport, calendar: WorkingCalendar) -> dict[str, Any]:
    return {
        "report_id": report.report_id,
        "desk_kind": report.kind,
        "occurred_at": _iso(report.occurred_at, calendar),
        "officer": report.officer,
    }


def _is_open(facts: DossierFacts | None) -> bool:
    return facts is not None and facts.status in OPEN_STATUSES


# ---- precomputed marks ---------------------------------------------------------------------


def due_soon_window(
    due_at: datetime,
    received_at: datetime | None,
    *,
    calendar: WorkingCalendar,
    settings: RuleSettings,
) -> timedelta:
    """The warning window: the setting, but at most a quarter of the dossier's allowed working
    time (``NgayTiepNhan`` → due date), so a same-day procedure is warned an hour or two ahead,
    not at intake."""
    if received_at is None or received_at >= due_at:
        return settings.due_soon_window
    allowed = calendar.working_time_between(_utc(received_at), _utc(due_at))
    return min(settings.due_soon_window, allowed / 4)


def due_soon_from(
    due_at: datetime | None,
    *,
    calendar: WorkingCalendar,
    settings: RuleSettings,
    received_at: datetime | None = None,
) -> datetime | None:
    """The earliest moment from which at most the due-soon window of office time is left.

    That is the end of office time before the point ``window`` back from ``due_at``: when the
    office closes on Friday with one hour left before a Monday 08:00 deadline, a one-hour window
    already holds on Friday at 17:00.
    """
    if due_at is None:
        return None
    window = due_soon_window(due_at, received_at, calendar=calendar, settings=settings)
    back = calendar.add_working_time(_utc(due_at), -window)
    return calendar.previous_office_end(back)


def overdue_from(due_at: datetime | None) -> datetime | None:
    """The first moment strictly after the due date: at ``due_at`` itself it is still on time."""
    return None if due_at is None else _utc(due_at) + TICK


def stall_mark(
    facts: DossierFacts, *, calendar: WorkingCalendar, settings: RuleSettings
) -> datetime | None:
    """The first moment at which more than ``stall_after`` of office time has passed.

    None when the rule cannot apply: not open, waiting on the applicant (that time does not
    count, and the status has held since ``last_activity_at``), or no activity known.
    """
    if (
        not _is_open(facts)
        or facts.status in WAITING_ON_APPLICANT
        or facts.last_activity_at is None
    ):
        return None
    reached = calendar.add_working_time(_utc(facts.last_activity_at), settings.stall_after)
    # Office time then has to resume: the rule holds from the first instant past that point.
    return calendar.next_office_moment(reached) + TICK


def grace_end(report: DeskReport, settings: RuleSettings) -> datetime:
    """When the system is expected to have caught up with the desk (wall-clock grace).

    The boundary convention, as for the due date: at ``grace_end`` itself the system is still
    within its grace (on time); the rules hold from the first instant after it.
    """
    return _utc(report.occurred_at) + settings.return_grace


def judged_from(report: DeskReport, settings: RuleSettings) -> datetime:
    """The first moment a desk report may be compared with the system (after its grace)."""
    return grace_end(report, settings) + TICK


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
    grace_minutes = _minutes(settings.return_grace)
    if facts is None:
        if now >= grace:
            details = {**_report_details(report, calendar), "grace_minutes": grace_minutes}
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
        since = _utc(report.occurred_at)
        details = _desk_and_system(report, facts, calendar)
        found.append(Finding(Kind.STATUS_CONFLICT, Severity.WARNING, since, details))
    return found


def _desk_and_system(
    report: DeskReport, facts: DossierFacts, calendar: WorkingCalendar
) -> dict[str, Any]:
    """What each side says; built only for a finding (most dossiers a sweep judges have none)."""
    return {
        **_report_details(report, calendar),
        "system_status": facts.status,
        "finished_at": _iso(facts.finished_at, calendar),
        "returned_at": _iso(facts.returned_at, calendar),
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
    occurred = _utc(report.occurred_at)
    reasons: list[str] = []
    moments = [occurred]
    difference: float | None = None
    if facts.returned_at is not None:
        returned = _utc(facts.returned_at)
        difference = _minutes(returned - occurred)
        if abs(returned - occurred) > settings.time_tolerance:
            reasons.append("returned_at_differs")
            moments.append(returned)
    if (
        facts.finished_at is not None
        and _utc(facts.finished_at) - occurred > settings.time_tolerance
    ):
        reasons.append("finished_after_desk_return")
        moments.append(_utc(facts.finished_at))
    if not reasons:
        return None
    details = {
        **_report_details(report, calendar),
        "system_status": facts.status,
        "returned_at": _iso(facts.returned_at, calendar),
        "finished_at": _iso(facts.finished_at, calendar),
        "difference_minutes": difference,
        "tolerance_minutes": _minutes(settings.time_tolerance),
        "reasons": reasons,
    }
    return Finding(Kind.TIME_MISMATCH, Severity.WARNING, max(moments), details)


@dataclass(frozen=True, slots=True)
class _Marks:
    """An open dossier's deadline marks, computed once for both the findings and the next check."""

    due_at: datetime | None
    due_soon: datetime | None
    stall: datetime | None


def _marks(facts: DossierFacts, *, calendar: WorkingCalendar, settings: RuleSettings) -> _Marks:
    due = None if facts.due_at is None else _utc(facts.due_at)
    return _Marks(
        due_at=due,
        due_soon=due_soon_from(
            due, calendar=calendar, settings=settings, received_at=facts.received_at
        ),
        stall=stall_mark(facts, calendar=calendar, settings=settings),
    )


def _time_rules(
    facts: DossierFacts,
    marks: _Marks,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    settings: RuleSettings,
) -> list[Finding]:
    """OVERDUE_NO_APOLOGY, DUE_SOON, STALLED, for an open dossier no desk report covers."""
    found: list[Finding] = []
    due = marks.due_at
    if due is not None:
        due_details = {"system_status": facts.status, "due_at": _iso(due, calendar)}
        if now > due:
            found.append(Finding(Kind.OVERDUE_NO_APOLOGY, Severity.CRITICAL, due, due_details))
        elif marks.due_soon is not None and now >= marks.due_soon:
            # Equivalent to working_time_between(now, due) <= window; the mark is exact.
            window = due_soon_window(due, facts.received_at, calendar=calendar, settings=settings)
            details = {**due_details, "window_minutes": _minutes(window)}
            found.append(Finding(Kind.DUE_SOON, Severity.INFO, marks.due_soon, details))

    if marks.stall is not None and now >= marks.stall:
        details = {
            "system_status": facts.status,
            "last_activity_at": _iso(facts.last_activity_at, calendar),
            "stall_after_minutes": _minutes(settings.stall_after),
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
) -> Verdict:
    """``evaluate`` and ``next_change`` together, each mark computed once (the sweep's path).

    ``delivered_until`` is the ingest watermark (None: unknown). The rules comparing a desk
    report with the system judge only once it has passed the report's :func:`judged_from`;
    before that their findings are ``held`` and the dossier waits for the watermark.
    """
    now = _utc(now)
    report = latest_report(reports)
    found: list[Finding] = []
    candidates: tuple[datetime | None, ...] = ()
    if report is not None:
        # Once the desk has handed it over or taken it back, deadlines and stalls are moot.
        found = _desk_rules(facts, report, now=now, calendar=calendar, settings=settings)
        judged = judged_from(report, settings)
        if delivered_until is None or delivered_until < judged:
            held = [replace(finding, held=True) for finding in found]
            return Verdict(sorted(held, key=_by_kind), judged, waits_for_watermark=True)
        if facts is None or facts.status in NOT_RETURNED_STATUSES:
            candidates = (judged,)
    elif facts is not None and _is_open(facts):
        marks = _marks(facts, calendar=calendar, settings=settings)
        found = _time_rules(facts, marks, now=now, calendar=calendar, settings=settings)
        candidates = (marks.due_soon, overdue_from(marks.due_at), marks.stall)
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
