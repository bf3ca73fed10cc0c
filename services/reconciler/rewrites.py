"""``DATES_REWRITTEN`` (contract §4): lateness hidden by editing dates afterwards.

The newest snapshot is compared with what earlier ones said, kept per dossier as a few extremes
(:mod:`shared.date_marks`), so the verdict costs O(1) whatever order the snapshots arrived in.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from services.reconciler.facts import DossierFacts, Finding, RuleSettings, as_utc, iso_in
from shared.calendar import WorkingCalendar
from shared.vocabulary import Kind, Severity


def dates_rewritten(
    facts: DossierFacts, *, calendar: WorkingCalendar, settings: RuleSettings
) -> Finding | None:
    """The newest snapshot moved the due date later than an earlier one said (no new reschedule
    giving that date), or moved an end stamp earlier by more than the tolerance."""
    marks, seen = facts.date_marks, facts.snapshot_at
    if marks is None or seen is None:
        return None
    moved: tuple[str, datetime, datetime | None, datetime] | None = None
    due = facts.due_at
    promised = due is not None and facts.due_source_at is None
    if promised and due is not None and marks.base_due_at is not None and due > marks.base_due_at:
        moved = ("NgayHenTra", marks.base_due_at, marks.base_seen_at, due)
    elif (
        due is not None
        and facts.due_source_at is not None
        and facts.due_source_at == marks.source_at
        and marks.source_due_at is not None
        and due > marks.source_due_at
    ):
        moved = ("NgayHenTraMoi", marks.source_due_at, marks.source_seen_at, due)
    tolerance = settings.time_tolerance
    moved = (
        moved
        or _moved_earlier(
            "NgayKetThucXuLy",
            facts.finished_at,
            marks.finished_max,
            marks.finished_seen_at,
            tolerance,
        )
        or _moved_earlier(
            "NgayTra", facts.returned_at, marks.returned_max, marks.returned_seen_at, tolerance
        )
    )
    if moved is None:
        return None
    field, before, before_seen, after = moved
    details = {
        "field": field,
        "before": iso_in(before, calendar),
        "before_seen_at": iso_in(before_seen, calendar),
        "after": iso_in(after, calendar),
        "after_seen_at": iso_in(seen, calendar),
        "system_status": facts.status,
    }
    return Finding(Kind.DATES_REWRITTEN, Severity.CRITICAL, as_utc(seen), details)


def _moved_earlier(
    field: str,
    value: datetime | None,
    latest: datetime | None,
    latest_seen: datetime | None,
    tolerance: timedelta,
) -> tuple[str, datetime, datetime | None, datetime] | None:
    """An end stamp now earlier than one seen before, by more than the tolerance."""
    if value is None or latest is None or latest - value <= tolerance:
        return None
    return field, latest, latest_seen, value
