"""The facts the rules judge and what they answer: the dossier as the system says it, the desk's
report, the thresholds, a finding and a verdict — plain data, and the helpers every rule uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from shared.calendar import WorkingCalendar
from shared.date_marks import DateMarks
from shared.dvcqg import OPEN_STATUSES, Status
from shared.vocabulary import Kind, Severity

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
    # For DATES_REWRITTEN: the newest snapshot's dates, and what earlier snapshots said.
    snapshot_at: datetime | None = None
    due_source_at: datetime | None = None  # NgayYeuCau of the reschedule setting due_at
    date_marks: DateMarks | None = None


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


def as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is UTC:  # what the database hands back: nothing to convert
        return moment
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"datetimes must be timezone-aware, got naive {moment!r}")
    return moment.astimezone(UTC)


def iso_in(moment: datetime | None, calendar: WorkingCalendar) -> str | None:
    """ISO 8601 with the local offset: what an officer reading the details expects."""
    return None if moment is None else moment.astimezone(calendar.tz).isoformat()


def minutes_of(delta: timedelta) -> float:
    return round(delta.total_seconds() / 60, 2)


def latest_report(reports: Sequence[DeskReport]) -> DeskReport | None:
    """The report that counts: latest by (occurred_at, report_id), whatever the list order."""
    if not reports:
        return None
    if len(reports) == 1:
        return reports[0]
    return max(
        reports,
        key=lambda r: (as_utc(r.occurred_at), r.report_id, r.kind, r.officer),
    )


def report_details(report: DeskReport, calendar: WorkingCalendar) -> dict[str, Any]:
    return {
        "report_id": report.report_id,
        "desk_kind": report.kind,
        "occurred_at": iso_in(report.occurred_at, calendar),
        "officer": report.officer,
    }


def is_open(facts: DossierFacts | None) -> bool:
    return facts is not None and facts.status in OPEN_STATUSES
