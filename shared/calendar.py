"""The working-day calendar: office hours on Vietnamese working days, with a local override table.

Deadlines are counted in working time (8 h = one working day), so every due-date and stall rule
needs to measure and add office time. Pure code (no I/O, no clock): the sweep calls it per
dossier on up to a million dossiers, so per-day answers are cached, whole days are counted with a
per-year prefix sum, and nothing steps minute by minute.

Assumes a timezone whose offset does not change during office hours (true of Asia/Ho_Chi_Minh):
every working day then holds exactly ``day_length`` of office time.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import accumulate, pairwise
from typing import TypeVar
from zoneinfo import ZoneInfo

import holidays

from shared.clock import VN_TZ

Period = tuple[time, time]

DEFAULT_OFFICE_HOURS: tuple[Period, ...] = (
    (time(7, 0), time(11, 30)),
    (time(13, 30), time(17, 0)),
)

_ONE_DAY = timedelta(days=1)
_ZERO = timedelta(0)


@lru_cache(maxsize=64)
def _vn_holidays(year: int) -> holidays.HolidayBase:
    """Built lazily, one year at a time: creating a year costs milliseconds, so only once."""
    return holidays.country_holidays("VN", years=year)


@lru_cache(maxsize=1 << 16)
def _vn_is_working_day(day: date) -> bool:
    """The national answer: weekdays minus public holidays and days off, plus worked Saturdays."""
    return _vn_holidays(day.year).is_working_day(day)


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is UTC:  # what the database hands back: nothing to check
        return
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment!r}")


def _in_utc(moment: datetime, name: str) -> datetime:
    """``moment`` as a UTC instant; naive datetimes are refused."""
    if moment.tzinfo is UTC:  # what the database and the rules hand over: nothing to do
        return moment
    _require_aware(moment, name)
    return moment.astimezone(UTC)


@lru_cache(maxsize=256)
def _first_ordinal(year: int) -> int:
    return date(year, 1, 1).toordinal()


def _day_index(day: date) -> int:
    """``day``'s position in its year, from 0 (``timetuple().tm_yday - 1``, without building a
    struct_time: the sweep asks this a few times per dossier)."""
    return day.toordinal() - _first_ordinal(day.year)


def _validate_periods(periods: Sequence[Period]) -> tuple[Period, ...]:
    """Sorted, non-empty, non-overlapping periods of a day; ValueError otherwise."""
    if not periods:
        raise ValueError("office hours need at least one period")
    ordered = sorted(periods)
    for start, end in ordered:
        if start.tzinfo is not None or end.tzinfo is not None:
            raise ValueError("office hours are local wall times, without a timezone")
        if start >= end:
            raise ValueError(f"office period {start}-{end} does not end after it starts")
    for (_, previous_end), (start, end) in pairwise(ordered):
        if start < previous_end:
            raise ValueError(f"office period {start}-{end} overlaps the one before it")
    return tuple(ordered)


_Key = TypeVar("_Key")
_Value = TypeVar("_Value")


def _remember(cache: dict[_Key, _Value], key: _Key, value: _Value) -> None:
    """Per-day answers are kept for the 4,096 days last asked (about eleven years of dates)."""
    if len(cache) > 4096:
        cache.clear()
    cache[key] = value


def _duration_of(period: Period) -> timedelta:
    start, end = period
    return datetime.combine(date.min, end) - datetime.combine(date.min, start)


class WorkingCalendar:
    """Office time on working days: ``holidays.VN`` first, then ``overrides`` (True = worked)."""

    def __init__(
        self,
        *,
        office_hours: Sequence[Period] = DEFAULT_OFFICE_HOURS,
        overrides: Mapping[date, bool] | None = None,
        tz: ZoneInfo = VN_TZ,
    ) -> None:
        self._periods = _validate_periods(office_hours)
        self._overrides: dict[date, bool] = dict(overrides or {})
        self._tz = tz
        self._day_length = sum((_duration_of(p) for p in self._periods), _ZERO)
        self._prefix_by_year: dict[int, list[int]] = {}
        self._worked_cache: dict[date, tuple[tuple[datetime, datetime], ...]] = {}
        self._from_cache: dict[tuple[date, int], date] = {}
        self._back_cache: dict[tuple[date, int], date] = {}

    @classmethod
    def parse_office_hours(cls, spec: str) -> tuple[Period, ...]:
        """``"07:00-11:30,13:30-17:00"`` → periods; the form settings take (``DOISOAT_…``)."""
        periods: list[Period] = []
        for part in spec.split(","):
            pieces = part.strip().split("-")
            if len(pieces) != 2:
                raise ValueError(f"office period {part.strip()!r} is not HH:MM-HH:MM")
            try:
                start, end = (time.fromisoformat(piece.strip()) for piece in pieces)
            except ValueError as error:
                raise ValueError(f"office period {part.strip()!r} is not HH:MM-HH:MM") from error
            periods.append((start, end))
        return _validate_periods(periods)

    @property
    def tz(self) -> ZoneInfo:
        """The zone office hours are read in."""
        return self._tz

    @property
    def office_hours(self) -> tuple[Period, ...]:
        return self._periods

    @property
    def day_length(self) -> timedelta:
        """Office time in one working day (8 h by default): one "working day" of a deadline."""
        return self._day_length

    # ---- days ------------------------------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        """The local override table wins; else the national calendar."""
        override = self._overrides.get(day)
        if override is not None:
            return override
        return _vn_is_working_day(day)

    def _prefix(self, year: int) -> list[int]:
        """``prefix[i]`` = working days among the first ``i`` days of ``year`` (cached per year)."""
        prefix = self._prefix_by_year.get(year)
        if prefix is None:
            first = date(year, 1, 1)
            length = (date(year, 12, 31) - first).days + 1
            flags = (self.is_working_day(first + timedelta(days=i)) for i in range(length))
            prefix = [0, *accumulate(int(flag) for flag in flags)]
            self._prefix_by_year[year] = prefix
        return prefix

    def _working_days_between(self, first: date, stop: date) -> int:
        """Working days in ``[first, stop)``: O(years), not O(days)."""
        if stop <= first:
            return 0
        count = 0
        day, index = first, _day_index(first)
        while day.year < stop.year:
            prefix = self._prefix(day.year)
            count += prefix[-1] - prefix[index]
            day, index = date(day.year + 1, 1, 1), 0
        prefix = self._prefix(stop.year)
        return count + prefix[_day_index(stop)] - prefix[index]

    def _nth_working_day_from(self, day: date, n: int) -> date:
        """The working day ``w >= day`` with exactly ``n`` working days in ``[day, w)``.

        Cached per (day, n): the deadline marks add the same few days to the same dates again
        and again."""
        key = (day, n)
        found = self._from_cache.get(key)
        if found is None:
            year, index = day.year, _day_index(day)
            while True:
                prefix = self._prefix(year)
                target = prefix[index] + n + 1
                if target <= prefix[-1]:
                    found = date(year, 1, 1) + timedelta(days=bisect_left(prefix, target) - 1)
                    break
                n -= prefix[-1] - prefix[index]
                year, index = year + 1, 0
            _remember(self._from_cache, key, found)
        return found

    def _nth_working_day_back(self, day: date, n: int) -> date:
        """The working day ``w <= day`` with exactly ``n`` working days in ``(w, day]``
        (cached as :meth:`_nth_working_day_from`)."""
        key = (day, n)
        found = self._back_cache.get(key)
        if found is None:
            year, index = day.year, _day_index(day)
            while True:
                prefix = self._prefix(year)
                target = prefix[index + 1] - n
                if target >= 1:
                    found = date(year, 1, 1) + timedelta(days=bisect_left(prefix, target) - 1)
                    break
                n -= prefix[index + 1]
                year = year - 1
                index = len(self._prefix(year)) - 2
            _remember(self._back_cache, key, found)
        return found

    # ---- moments ---------------------------------------------------------------------------

    def _worked(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """``day``'s office periods as UTC instants, none when it is not worked: one cached
        lookup for the day's flag and its periods (a million dossiers ask this a few times
        each)."""
        worked = self._worked_cache.get(day)
        if worked is None:
            worked = (
                tuple(
                    (
                        datetime.combine(day, start, tzinfo=self._tz).astimezone(UTC),
                        datetime.combine(day, end, tzinfo=self._tz).astimezone(UTC),
                    )
                    for start, end in self._periods
                )
                if self.is_working_day(day)
                else ()
            )
            _remember(self._worked_cache, day, worked)
        return worked

    def _local_day(self, moment: datetime) -> date:
        return moment.astimezone(self._tz).date()

    def _office_time_within(self, day: date, start: datetime, end: datetime) -> timedelta:
        """Office time of ``day`` inside ``[start, end)``."""
        total = _ZERO
        for period_start, period_end in self._worked(day):
            overlap = min(period_end, end) - max(period_start, start)
            if overlap > _ZERO:
                total += overlap
        return total

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Office time in ``[start, end)``; zero when ``end <= start``."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        if end <= start:
            return _ZERO
        first, last = self._local_day(start), self._local_day(end)
        if first == last:
            return self._office_time_within(first, start, end)
        whole_days = self._working_days_between(first + _ONE_DAY, last)
        return (
            self._office_time_within(first, start, end)
            + whole_days * self._day_length
            + self._office_time_within(last, start, end)
        )

    def add_working_time(self, start: datetime, duration: timedelta) -> datetime:
        """The moment ``duration`` of office time after ``start`` (before it when negative).

        Forwards it is the earliest such moment (Friday 16:00 + 1 h is Friday 17:00, not
        Monday 07:00); backwards the latest (Monday 08:00 − 1 h is Monday 07:00). So
        ``add(add(s, d), -d) == s`` whenever ``s`` is office time.
        """
        start = _in_utc(start, "start")
        if duration > _ZERO:
            return self._forward(start, duration)
        if duration < _ZERO:
            return self._backward(start, -duration)
        return start

    def _forward(self, start: datetime, remaining: timedelta) -> datetime:
        day = self._local_day(start)
        for period_start, period_end in self._worked(day):
            if period_end <= start:
                continue
            begin = max(period_start, start)
            if remaining <= period_end - begin:
                return begin + remaining
            remaining -= period_end - begin
        whole_days, rest = divmod(remaining, self._day_length)
        if not rest:  # end at the close of the last day rather than the next morning
            whole_days, rest = whole_days - 1, self._day_length
        target = self._nth_working_day_from(day + _ONE_DAY, whole_days)
        for period_start, period_end in self._worked(target):
            if rest <= period_end - period_start:
                return period_start + rest
            rest -= period_end - period_start
        raise AssertionError("unreachable: rest never exceeds a day's office time")

    def _backward(self, start: datetime, remaining: timedelta) -> datetime:
        day = self._local_day(start)
        for period_start, period_end in reversed(self._worked(day)):
            if period_start >= start:
                continue
            finish = min(period_end, start)
            if remaining <= finish - period_start:
                return finish - remaining
            remaining -= finish - period_start
        whole_days, rest = divmod(remaining, self._day_length)
        if not rest:  # stop at the opening of the earliest day rather than the evening before
            whole_days, rest = whole_days - 1, self._day_length
        target = self._nth_working_day_back(day - _ONE_DAY, whole_days)
        for period_start, period_end in reversed(self._worked(target)):
            if rest <= period_end - period_start:
                return period_end - rest
            rest -= period_end - period_start
        raise AssertionError("unreachable: rest never exceeds a day's office time")

    def next_office_moment(self, moment: datetime) -> datetime:
        """``moment`` itself if office time, else the start of the next office period."""
        moment = _in_utc(moment, "moment")
        day = self._local_day(moment)
        for period_start, period_end in self._worked(day):
            if moment < period_end:
                return max(moment, period_start)
        return self._worked(self._nth_working_day_from(day + _ONE_DAY, 0))[0][0]

    def previous_office_end(self, moment: datetime) -> datetime:
        """``moment`` itself if office time runs right up to it, else the end of the last period.

        The mirror of :meth:`next_office_moment`: the earliest moment from which no office time
        remains before ``moment`` (so "within N working hours of X" starts there).
        """
        moment = _in_utc(moment, "moment")
        day = self._local_day(moment)
        for period_start, period_end in reversed(self._worked(day)):
            if moment > period_start:
                return min(moment, period_end)
        return self._worked(self._nth_working_day_back(day - _ONE_DAY, 0))[-1][1]
