"""The KPI formulas of contract §4 (QĐ 766/QĐ-TTg), as pure functions: no I/O, no clock.

A dossier belongs to the period of its ``NgayTiepNhan``; a desk report to the period of its
``occurred_at``. Periods are whole days in Asia/Ho_Chi_Minh, ``[first_day 00:00, last_day + 1
00:00)``. Percentages run from 0 to 100, rounded half-up to two decimals, and are ``None`` when
there is nothing to count.

On time (QĐ 766): the end of a dossier is the first moment it reached 9 (``NgayKetThucXuLy``),
10 (``NgayTra``) or a terminal status (3: ``NgayTuChoi``; 7 and 8: the snapshot's
``emitted_at``), taking only the stamps its current status vouches for; an open dossier has no
end yet and is measured at the end of the period — which is why a dossier returned in reality but
still "processing" on the system counts as late. It is on time when end ≤ its effective due date.
Dossiers without a due date are left out of that share and counted in ``without_due_date``.

:class:`KpiTally` states the counting row by row; the service has the database count the same
way (:mod:`services.reconciler.kpis.counting`), and ``test_counting`` holds the two equal. A
tally given a :class:`Window` also keeps the dossiers still to be decided before the month
ends, for the forecast of :mod:`services.reconciler.kpis.forecast`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from shared.clock import VN_TZ
from shared.dvcqg import Status
from shared.vocabulary import Kind

MAX_PERIOD_DAYS: Final = 366
TREND_WEEKS: Final = 12  # the leaders' weekly review shows this many weeks (contract §6)
_ISO_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
WEEK_YEARS: Final = range(1970, 3000)  # far from date's limits: a trend reaches 11 weeks back
ONLINE_CHANNEL: Final = 2  # KenhThucHien 2: trực tuyến
_HUNDREDTH = Decimal("0.01")


class PeriodError(ValueError):
    """A period the API refuses (422); the message is in Vietnamese and English."""


@dataclass(frozen=True, slots=True)
class Period:
    """Whole days ``first_day``..``last_day`` (inclusive), Vietnam time.

    ``as_of`` (now) caps the moment open dossiers are measured at, so that a period reaching
    into the future does not count as late a dossier that is not due yet.

    Its bounds are computed once, also in UTC: rows come back from the database in UTC, and
    comparing two datetimes of different time zones costs some 30 times more than of one
    (a million-dossier board compares each row's dates with these bounds).
    """

    first_day: date
    last_day: date
    as_of: datetime | None = None
    _utc: tuple[datetime, datetime, datetime] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        end = self.end_at.astimezone(UTC)
        open_end = self.as_of.astimezone(UTC) if self.as_of is not None else end
        object.__setattr__(self, "_utc", (self.start_at.astimezone(UTC), end, min(open_end, end)))

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.first_day, time(0), tzinfo=VN_TZ)

    @property
    def end_at(self) -> datetime:
        """Exclusive: the start of the day after ``last_day``."""
        return datetime.combine(self.last_day + timedelta(days=1), time(0), tzinfo=VN_TZ)

    @property
    def open_end(self) -> datetime:
        """Where a dossier with no end yet is measured: the end of the period, or now if sooner
        (in UTC)."""
        return self._utc[2]

    @property
    def month_end(self) -> datetime:
        """Exclusive: the start of the month after the one ``last_day`` is in (Vietnam time)."""
        year, month = divmod(self.last_day.year * 12 + self.last_day.month, 12)
        return datetime.combine(date(year, month + 1, 1), time(0), tzinfo=VN_TZ)

    def contains(self, moment: datetime | None) -> bool:
        return moment is not None and self._utc[0] <= moment < self._utc[1]


@dataclass(frozen=True, slots=True, order=True)
class IsoWeek:
    """An ISO 8601 week (``2026-W49``): Monday to Sunday, the leaders' review period."""

    year: int
    week: int

    @classmethod
    def parse(cls, text: str) -> IsoWeek:
        """``YYYY-Www``; raise :class:`PeriodError` for anything else or a week that is not."""
        found = _ISO_WEEK.match(text.strip())
        try:
            if found is None:
                raise ValueError(text)
            year, week = int(found[1]), int(found[2])
            if year not in WEEK_YEARS:
                raise ValueError(text)
            date.fromisocalendar(year, week, 1)
        except ValueError:
            raise PeriodError(
                f"Tuần {text!r} không hợp lệ: cần dạng YYYY-Www, ví dụ 2026-W49. / "
                f"{text!r} is not an ISO week YYYY-Www (e.g. 2026-W49)."
            ) from None
        return cls(year, week)

    @classmethod
    def containing(cls, day: date) -> IsoWeek:
        year, week, _ = day.isocalendar()
        return cls(year, week)

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    @property
    def sunday(self) -> date:
        return self.monday + timedelta(days=6)

    def shifted(self, weeks: int) -> IsoWeek:
        """The week ``weeks`` later (earlier when negative)."""
        return IsoWeek.containing(self.monday + timedelta(weeks=weeks))

    def period(self, *, as_of: datetime | None) -> Period:
        """Monday..Sunday as a :class:`Period`: what ``GET /kpis?from=Monday&to=Sunday`` uses."""
        return Period(self.monday, self.sunday, as_of=as_of)

    def __str__(self) -> str:
        return f"{self.year:04d}-W{self.week:02d}"


def trend_weeks(last: IsoWeek, count: int = TREND_WEEKS) -> list[IsoWeek]:
    """``count`` consecutive weeks ending with ``last``, oldest first."""
    return [last.shifted(offset) for offset in range(1 - count, 1)]


def month_so_far(now: datetime) -> Period:
    """This month up to today (Vietnam time), measured now: ``GET /kpis`` without from/to."""
    today = now.astimezone(VN_TZ).date()
    return Period(today.replace(day=1), today, as_of=now)


def check_period(first_day: date, last_day: date) -> None:
    """Raise :class:`PeriodError` unless ``first_day`` ≤ ``last_day`` within 366 days."""
    if first_day > last_day:
        raise PeriodError(
            f"Ngày bắt đầu {first_day.isoformat()} sau ngày kết thúc {last_day.isoformat()}. / "
            f"'from' ({first_day.isoformat()}) is after 'to' ({last_day.isoformat()})."
        )
    days = (last_day - first_day).days + 1
    if days > MAX_PERIOD_DAYS:
        raise PeriodError(
            f"Kỳ báo cáo dài {days} ngày, tối đa {MAX_PERIOD_DAYS} ngày. / "
            f"The period spans {days} days; at most {MAX_PERIOD_DAYS} are allowed."
        )


@dataclass(frozen=True, slots=True)
class KpiInput:
    """One dossier as the KPIs see it (a row of ``dossiers``)."""

    code: str
    status: int | None
    channel: int | None  # KenhThucHien
    digitised: bool | None  # HoSoCoThanhPhanSoHoa == 1
    received_at: datetime | None  # NgayTiepNhan
    due_at: datetime | None  # effective due date (contract §1)
    finished_at: datetime | None = None  # NgayKetThucXuLy
    returned_at: datetime | None = None  # NgayTra
    refused_at: datetime | None = None  # NgayTuChoi
    # emitted_at of the first snapshot that showed the current closing status (7, 8, 9)
    status_first_seen_at: datetime | None = None
    responsible: str | None = None  # the holder: NguoiXuLy of the latest step


@dataclass(frozen=True, slots=True)
class DeskReportInput:
    """One desk report (contract §2), and whether the system knows its dossier."""

    dossier_code: str
    occurred_at: datetime
    known: bool  # a dossiers row exists (a snapshot or a step was received)


@dataclass(frozen=True, slots=True)
class UnitKpis:
    received: int
    with_due_date: int
    on_time: int
    online: int
    digitised: int
    reported: int  # distinct dossiers the desk reported in the period
    reported_known: int

    @property
    def without_due_date(self) -> int:
        return self.received - self.with_due_date

    @property
    def on_time_pct(self) -> float | None:
        return percent(self.on_time, self.with_due_date)

    @property
    def online_pct(self) -> float | None:
        return percent(self.online, self.received)

    @property
    def digitised_pct(self) -> float | None:
        return percent(self.digitised, self.received)

    @property
    def in_system_pct(self) -> float | None:
        return percent(self.reported_known, self.reported)


def percent(part: int, whole: int) -> float | None:
    """``part`` of ``whole`` in percent, two decimals rounded half-up; None when ``whole`` is 0."""
    if whole == 0:
        return None
    share = Decimal(part) * 100 / Decimal(whole)
    return float(share.quantize(_HUNDREDTH, rounding=ROUND_HALF_UP))


# The stamps each closed status vouches for; the end is the earliest of those present. The
# database counts with the same table (:mod:`services.reconciler.kpis.counting`).
END_STAMPS: Final[Mapping[int, tuple[str, ...]]] = {
    Status.FINISHED: ("finished_at",),
    Status.RETURNED: ("finished_at", "returned_at"),
    Status.REFUSED: ("refused_at",),
    Status.WITHDRAWN: ("finished_at", "status_first_seen_at"),
    Status.STOPPED: ("finished_at", "status_first_seen_at"),
}


def ended_at(row: KpiInput) -> datetime | None:
    """When the dossier's handling ended per QĐ 766, or None if it has no end yet.

    A closed status without its stamp falls back to the ``emitted_at`` of the first snapshot
    that showed it (the system said so by then at the latest): a vendor re-syncing a withdrawn
    dossier months later does not move its end, nor make it late.
    """
    stamps = END_STAMPS.get(row.status) if row.status is not None else None
    if stamps is None:
        return None
    present: list[datetime] = [
        moment for name in stamps if (moment := getattr(row, name)) is not None
    ]
    return min(present) if present else row.status_first_seen_at


def end_moment(row: KpiInput, *, open_end: datetime) -> datetime:
    """When the dossier's handling ended per QĐ 766 (:func:`ended_at`), else ``open_end``."""
    end = ended_at(row)
    return open_end if end is None else end


def is_on_time(row: KpiInput, *, open_end: datetime) -> bool | None:
    """True/False per QĐ 766; None when the dossier has no due date."""
    if row.due_at is None:
        return None
    return end_moment(row, open_end=open_end) <= row.due_at


@dataclass(frozen=True, slots=True)
class Undecided:
    """A dossier counted on time today that may still end late before the month ends."""

    dossier_code: str
    due_at: datetime
    responsible: str | None  # its holder


@dataclass(frozen=True, slots=True)
class Window:
    """What is left to decide of a period: from ``now`` to the end of its last day's month.

    A dossier is undecided when it has no end yet and is due in ``[now, until)``: not past due
    (measured now it is on time, at its due date itself too) and due before the month ends.
    Both bounds are in UTC, as rows come back from the database.
    """

    now: datetime
    until: datetime

    @classmethod
    def of(cls, period: Period) -> Window | None:
        """The window of ``period``; None when the period is not measured at a moment."""
        if period.as_of is None:
            return None
        return cls(period.as_of.astimezone(UTC), period.month_end.astimezone(UTC))

    def undecided(self, row: KpiInput) -> bool:
        due = row.due_at
        return due is not None and self.now <= due < self.until and ended_at(row) is None


@dataclass(slots=True)
class KpiTally:
    """Running counts of one unit, fed row by row (rows outside the period are ignored).

    With a ``window`` it also keeps, in ``undecided``, the dossiers it counted on time that
    the window holds (:meth:`Window.undecided`): the forecast's "still to be decided".
    """

    period: Period
    received: int = 0
    with_due_date: int = 0
    on_time: int = 0
    online: int = 0
    digitised: int = 0
    reported: set[str] = field(default_factory=set)
    reported_known: set[str] = field(default_factory=set)
    window: Window | None = None
    undecided: list[Undecided] = field(default_factory=list)

    def add_dossier(self, row: KpiInput) -> None:
        if not self.period.contains(row.received_at):
            return
        self.received += 1
        self.online += row.channel == ONLINE_CHANNEL
        self.digitised += row.digitised is True
        on_time = is_on_time(row, open_end=self.period.open_end)
        if on_time is not None:
            self.with_due_date += 1
            self.on_time += on_time
            if on_time and self.window is not None and self.window.undecided(row):
                assert row.due_at is not None  # Window.undecided checked it
                self.undecided.append(Undecided(row.code, row.due_at, row.responsible))

    def add_report(self, report: DeskReportInput) -> None:
        if not self.period.contains(report.occurred_at):
            return
        self.reported.add(report.dossier_code)
        if report.known:
            self.reported_known.add(report.dossier_code)

    def result(self) -> UnitKpis:
        return UnitKpis(
            received=self.received,
            with_due_date=self.with_due_date,
            on_time=self.on_time,
            online=self.online,
            digitised=self.digitised,
            reported=len(self.reported),
            reported_known=len(self.reported_known),
        )


def discrepancy_counts(counts: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Unresolved discrepancies per kind, every kind present (0 when none)."""
    found: dict[str, int] = {kind.value: 0 for kind in Kind}
    for kind, count in counts:
        found[kind] = found.get(kind, 0) + count
    return found
