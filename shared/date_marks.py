"""What detecting rewritten dates needs of a dossier, kept per dossier (contract §4,
``DATES_REWRITTEN``): O(1) per snapshot and independent of the order snapshots arrive in.

For a late dossier someone may edit the dates afterwards to make it look on time. The newest
snapshot is compared with what earlier snapshots said, kept as a few extremes:

- ``base``: the earliest due date among snapshots whose due date is the promised ``NgayHenTra``
  (no reschedule yet), and when it was seen;
- ``source``: the latest reschedule that set a due date (``NgayYeuCau`` of its entry in
  ``DanhSachHoSoBoSung`` / ``DanhSachXinLoi``), the earliest due date it was seen giving, and
  when — a new entry moves this on (an explained extension); the same entry giving a later date
  is a rewrite;
- ``finished`` / ``returned``: the latest ``NgayKetThucXuLy`` / ``NgayTra`` seen, and when.

Each is a function of the set of snapshots (a minimum or a maximum), so any arrival order gives
the same marks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime


@dataclass(frozen=True, slots=True)
class SnapshotDates:
    """The dates one snapshot claims."""

    emitted_at: datetime
    due_at: datetime | None  # the effective due date
    due_source_at: datetime | None  # NgayYeuCau of the reschedule setting it; None: NgayHenTra
    finished_at: datetime | None
    returned_at: datetime | None


@dataclass(frozen=True, slots=True)
class DateMarks:
    base_due_at: datetime | None = None
    base_seen_at: datetime | None = None
    source_at: datetime | None = None
    source_due_at: datetime | None = None
    source_seen_at: datetime | None = None
    finished_max: datetime | None = None
    finished_seen_at: datetime | None = None
    returned_max: datetime | None = None
    returned_seen_at: datetime | None = None


# The marks' names, which are also the dossier's columns that keep them (shared.models.Dossier).
COLUMNS = tuple(field.name for field in fields(DateMarks))


def _earlier(
    candidate: tuple[datetime, datetime], held: tuple[datetime | None, datetime | None]
) -> bool:
    """(value, seen) smaller than what is held; ties go to the earlier sighting."""
    value, seen = held
    return value is None or seen is None or candidate < (value, seen)


def _later(
    candidate: tuple[datetime, datetime], held: tuple[datetime | None, datetime | None]
) -> bool:
    """(value, seen) larger than what is held; ties go to the earlier sighting."""
    value, seen = held
    return (
        value is None
        or seen is None
        or (candidate[0], -candidate[1].timestamp())
        > (
            value,
            -seen.timestamp(),
        )
    )


def merge(marks: DateMarks, snapshot: SnapshotDates) -> DateMarks:
    """The marks once ``snapshot`` is known too (commutative and idempotent).

    Built once at the end rather than with a ``replace`` per field: ingest merges every new
    snapshot of a batch, and copying a nine-field dataclass up to four times a snapshot showed.
    """
    seen = snapshot.emitted_at
    due, source = snapshot.due_at, snapshot.due_source_at
    base_due_at, base_seen_at = marks.base_due_at, marks.base_seen_at
    source_at, source_due_at, source_seen_at = (
        marks.source_at,
        marks.source_due_at,
        marks.source_seen_at,
    )
    finished_max, finished_seen_at = marks.finished_max, marks.finished_seen_at
    returned_max, returned_seen_at = marks.returned_max, marks.returned_seen_at
    changed = False
    if due is not None and source is None and _earlier((due, seen), (base_due_at, base_seen_at)):
        base_due_at, base_seen_at, changed = due, seen, True
    if due is not None and source is not None:
        newer_source = source_at is None or source > source_at
        same_source = source_at == source
        if newer_source or (same_source and _earlier((due, seen), (source_due_at, source_seen_at))):
            source_at, source_due_at, source_seen_at, changed = source, due, seen, True
    if snapshot.finished_at is not None and _later(
        (snapshot.finished_at, seen), (finished_max, finished_seen_at)
    ):
        finished_max, finished_seen_at, changed = snapshot.finished_at, seen, True
    if snapshot.returned_at is not None and _later(
        (snapshot.returned_at, seen), (returned_max, returned_seen_at)
    ):
        returned_max, returned_seen_at, changed = snapshot.returned_at, seen, True
    if not changed:
        return marks
    return DateMarks(
        base_due_at,
        base_seen_at,
        source_at,
        source_due_at,
        source_seen_at,
        finished_max,
        finished_seen_at,
        returned_max,
        returned_seen_at,
    )


def merge_all(marks: DateMarks, snapshots: Iterable[SnapshotDates]) -> DateMarks:
    for snapshot in snapshots:
        marks = merge(marks, snapshot)
    return marks
