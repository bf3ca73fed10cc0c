"""Where the time of a late dossier went, and whose step it was (contract §7): pure functions
over the working-day calendar, beside the rules.

A step runs from its ``NgayBatDau`` (else its ``ThoiDiemXuLy``) to the next step's start, the
last one to the dossier's end (§4: the KPI end, or now while open). Its allowance ends at
``NgayKetThucTheoQuyDinh``; its overrun is the working time from that end to the step's end,
when positive. A step in status 5 or 6 waits on the applicant: its time is no one's overrun, and
neither is any other step's time that overlaps it. When no step of a late dossier carries an
allowance, the whole lateness — the working time from the effective due date to the end, waiting
excluded — goes to the step that held the dossier at the due date.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.calendar import WorkingCalendar
from shared.dvcqg import (
    RESCHEDULE_LISTS,
    WAITING_ON_APPLICANT,
    optional_thoi_diem,
    parse_thoi_diem,
)

_ZERO = timedelta(0)
APOLOGY_LIST = "DanhSachXinLoi"
NO_OFFICER = "(chưa có cán bộ)"  # the key of late dossiers no step's officer answers for


@dataclass(frozen=True, slots=True)
class StepFacts:
    """One progress step as §7 reads it."""

    officer: str | None  # NguoiXuLy
    department: str | None  # PhongBanXuLy
    status: int | None  # TrangThai of the step
    started_at: datetime  # NgayBatDau, else ThoiDiemXuLy
    allowed_until: datetime | None  # NgayKetThucTheoQuyDinh


@dataclass(frozen=True, slots=True)
class StepLateness:
    officer: str | None
    department: str | None
    unit_code: str | None
    started_at: datetime
    allowed_until: datetime | None
    ended_at: datetime
    overrun: timedelta  # working time

    @property
    def overrun_working_hours(self) -> float:
        return round(self.overrun.total_seconds() / 3600, 2)


@dataclass(frozen=True, slots=True)
class Lateness:
    late: bool
    overrun: timedelta  # working time, summed over the steps charged
    steps: tuple[StepLateness, ...]  # empty for a dossier on time

    @property
    def overrun_working_hours(self) -> float:
        return round(self.overrun.total_seconds() / 3600, 2)


ON_TIME = Lateness(False, _ZERO, ())


def is_late(due_at: datetime | None, end: datetime) -> bool:
    """Finished after the effective due date, or open past it (``end`` is then now)."""
    return due_at is not None and end > due_at


def lateness(
    steps: Sequence[StepFacts],
    *,
    due_at: datetime | None,
    end: datetime,
    unit_code: str | None,
    calendar: WorkingCalendar,
) -> Lateness:
    """Each step's span, allowance and overrun, for a late dossier (§7)."""
    if not is_late(due_at, end):
        return ON_TIME
    assert due_at is not None
    spans = _spans(steps, end)
    waiting = [(start, stop) for step, start, stop in spans if step.status in WAITING_ON_APPLICANT]

    def working(start: datetime, stop: datetime) -> timedelta:
        return _working_outside(start, stop, waiting, calendar)

    if any(step.allowed_until is not None for step in steps):
        charged = []
        for step, start, stop in spans:
            overrun = _ZERO
            if step.allowed_until is not None and step.status not in WAITING_ON_APPLICANT:
                overrun = working(max(step.allowed_until, start), stop)
            charged.append(_charge(step, start, stop, overrun, unit_code))
        total = sum((step.overrun for step in charged), _ZERO)
        return Lateness(True, total, tuple(charged))

    overrun = working(due_at, end)
    holder = next(
        ((step, start, stop) for step, start, stop in spans if start <= due_at < stop), None
    )
    if holder is None:  # no step, or the due date came before the first one
        held = StepLateness(None, None, unit_code, due_at, None, end, overrun)
    else:
        step, start, stop = holder
        held = _charge(step, start, stop, overrun, unit_code)
    return Lateness(True, overrun, (held,))


def _spans(steps: Sequence[StepFacts], end: datetime) -> list[tuple[StepFacts, datetime, datetime]]:
    ordered = sorted(steps, key=lambda step: step.started_at)
    if not ordered:
        return []
    stops = [step.started_at for step in ordered[1:]] + [end]
    return [
        (step, step.started_at, max(stop, step.started_at))
        for step, stop in zip(ordered, stops, strict=True)
    ]


def _charge(
    step: StepFacts, start: datetime, stop: datetime, overrun: timedelta, unit_code: str | None
) -> StepLateness:
    return StepLateness(
        step.officer, step.department, unit_code, start, step.allowed_until, stop, overrun
    )


def _working_outside(
    start: datetime,
    stop: datetime,
    waiting: Sequence[tuple[datetime, datetime]],
    calendar: WorkingCalendar,
) -> timedelta:
    """Working time in ``[start, stop)`` that does not fall in a waiting interval."""
    if stop <= start:
        return _ZERO
    total = calendar.working_time_between(start, stop)
    for wait_start, wait_stop in _merged(waiting):
        overlap_start, overlap_stop = max(start, wait_start), min(stop, wait_stop)
        if overlap_stop > overlap_start:
            total -= calendar.working_time_between(overlap_start, overlap_stop)
    return max(total, _ZERO)


def _merged(intervals: Sequence[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, stop in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


@dataclass(frozen=True, slots=True)
class Apologies:
    """A late dossier's apology letters (DanhSachXinLoi), as the inspection asks about them."""

    any: bool  # at least one apology
    late: bool  # one came after the due date it apologises for


def apologies(snapshot: Mapping[str, Any]) -> Apologies:
    """Walk the reschedules in order of ``NgayYeuCau``: an apology is late when it was made
    after the due date in force then (the promised date, or the last reschedule's new one)."""
    due = optional_thoi_diem(snapshot, "NgayHenTra")
    entries = sorted(
        (entry["NgayYeuCau"], entry["NgayHenTraMoi"], name)
        for name in RESCHEDULE_LISTS
        for entry in snapshot.get(name) or ()
        if isinstance(entry, Mapping)
    )
    found = late = False
    for requested_text, new_due_text, name in entries:
        requested, new_due = parse_thoi_diem(requested_text), parse_thoi_diem(new_due_text)
        if name == APOLOGY_LIST:
            found = True
            late = late or (due is not None and requested > due)
        due = new_due
    return Apologies(found, late)


@dataclass(frozen=True, slots=True)
class Accounted:
    """What ``GET /api/v1/lateness`` sums of one late dossier: computed once, from the steps and
    the snapshot, then either summed at once or stored until the dossier changes."""

    overrun_hours: float  # the dossier's overrun, in working hours (rounded as shown)
    charges: dict[str, float]  # officer (NO_OFFICER: none) → the overrun hours charged to them
    apology: Apologies


def accounted(found: Lateness, *, due_at: datetime, snapshot: Mapping[str, Any]) -> Accounted:
    """A late dossier's figures for the report: each officer's overrun (by step, as rounded in
    the dossier's view), or, when no step overran, the holder at the due date with nothing."""
    charged: dict[str, float] = defaultdict(float)
    for step in found.steps:
        if step.overrun_working_hours > 0:
            charged[step.officer or NO_OFFICER] += step.overrun_working_hours
    if not charged:
        charged[_holder_at(found.steps, due_at) or NO_OFFICER] += 0.0
    return Accounted(found.overrun_working_hours, dict(charged), apologies(snapshot))


def _holder_at(steps: Iterable[StepLateness], moment: datetime) -> str | None:
    """The officer of the step that held the dossier at ``moment`` (None: no step did)."""
    return next((step.officer for step in steps if step.started_at <= moment < step.ended_at), None)
