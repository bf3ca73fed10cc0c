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
from dataclasses import dataclass, replace
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
    """The marks once ``snapshot`` is known too (commutative and idempotent)."""
    seen = snapshot.emitted_at
    due = snapshot.due_at
    held = (marks.base_due_at, marks.base_seen_at)
    if due is not None and snapshot.due_source_at is None and _earlier((due, seen), held):
        marks = replace(marks, base_due_at=snapshot.due_at, base_seen_at=seen)
    if snapshot.due_at is not None and snapshot.due_source_at is not None:
        newer_source = marks.source_at is None or snapshot.due_source_at > marks.source_at
        same_source = marks.source_at == snapshot.due_source_at
        if newer_source or (
            same_source
            and _earlier((snapshot.due_at, seen), (marks.source_due_at, marks.source_seen_at))
        ):
            marks = replace(
                marks,
                source_at=snapshot.due_source_at,
                source_due_at=snapshot.due_at,
                source_seen_at=seen,
            )
    if snapshot.finished_at is not None and _later(
        (snapshot.finished_at, seen), (marks.finished_max, marks.finished_seen_at)
    ):
        marks = replace(marks, finished_max=snapshot.finished_at, finished_seen_at=seen)
    if snapshot.returned_at is not None and _later(
        (snapshot.returned_at, seen), (marks.returned_max, marks.returned_seen_at)
    ):
        marks = replace(marks, returned_max=snapshot.returned_at, returned_seen_at=seen)
    return marks


def merge_all(marks: DateMarks, snapshots: Iterable[SnapshotDates]) -> DateMarks:
    for snapshot in snapshots:
        marks = merge(marks, snapshot)
    return marks
