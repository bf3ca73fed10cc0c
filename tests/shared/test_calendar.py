"""The working-day calendar: Vietnamese holidays, overrides, office hours and its arithmetic."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.calendar import DEFAULT_OFFICE_HOURS, WorkingCalendar
from shared.clock import VN_TZ

CALENDAR = WorkingCalendar()
HOUR = timedelta(hours=1)


def is_office_time(moment: datetime) -> bool:
    """The microsecond starting at ``moment`` is working time."""
    return CALENDAR.working_time_between(moment, moment + timedelta(microseconds=1)) > timedelta(0)


def vn(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=VN_TZ)


# ---- days ----------------------------------------------------------------------------------


@pytest.mark.parametrize("day", [date(2025, 1, 27) + timedelta(days=i) for i in range(7)])
def test_tet_2025_is_off(day: date) -> None:
    assert not CALENDAR.is_working_day(day)


def test_days_around_tet_2025_are_worked() -> None:
    assert CALENDAR.is_working_day(date(2025, 1, 24))
    assert CALENDAR.is_working_day(date(2025, 2, 3))


def test_substituted_day_off_2_may_2025() -> None:
    assert not CALENDAR.is_working_day(date(2025, 5, 2))


def test_worked_saturday_26_april_2025() -> None:
    assert CALENDAR.is_working_day(date(2025, 4, 26))


def test_vietnamese_culture_day_24_november_2026_is_off() -> None:
    assert not CALENDAR.is_working_day(date(2026, 11, 24))


def test_ordinary_weekend_is_off() -> None:
    assert not CALENDAR.is_working_day(date(2025, 3, 8))
    assert not CALENDAR.is_working_day(date(2025, 3, 9))


def test_override_makes_a_saturday_worked() -> None:
    calendar = WorkingCalendar(overrides={date(2025, 3, 8): True})
    assert calendar.is_working_day(date(2025, 3, 8))
    assert calendar.working_time_between(vn(2025, 3, 8), vn(2025, 3, 9)) == 8 * HOUR


def test_override_makes_a_weekday_off() -> None:
    calendar = WorkingCalendar(overrides={date(2025, 3, 5): False})
    assert not calendar.is_working_day(date(2025, 3, 5))
    assert calendar.add_working_time(vn(2025, 3, 4, 16), 2 * HOUR) == vn(2025, 3, 6, 8)


def test_override_wins_over_a_public_holiday() -> None:
    calendar = WorkingCalendar(overrides={date(2025, 5, 2): True})
    assert calendar.is_working_day(date(2025, 5, 2))


# ---- office hours --------------------------------------------------------------------------


def test_parse_office_hours_reads_the_default_spec() -> None:
    assert WorkingCalendar.parse_office_hours("07:00-11:30, 13:30-17:00") == DEFAULT_OFFICE_HOURS


def test_parse_office_hours_sorts_periods() -> None:
    periods = WorkingCalendar.parse_office_hours("13:00-17:00,08:00-12:00")
    assert periods == ((time(8), time(12)), (time(13), time(17)))


@pytest.mark.parametrize(
    "spec",
    ["", "07:00", "07:00-11:30-12:00", "7h-11h", "11:30-07:00", "07:00-12:00,11:00-17:00"],
    ids=["empty", "no-end", "three-times", "not-a-time", "reversed", "overlapping"],
)
def test_parse_office_hours_refuses_a_bad_spec(spec: str) -> None:
    with pytest.raises(ValueError):
        WorkingCalendar.parse_office_hours(spec)


def test_day_length_is_eight_hours_by_default() -> None:
    assert CALENDAR.day_length == 8 * HOUR


def test_day_length_follows_office_hours() -> None:
    calendar = WorkingCalendar(office_hours=WorkingCalendar.parse_office_hours("08:00-12:00"))
    assert calendar.day_length == 4 * HOUR


def test_lunch_break_is_not_office_time() -> None:
    assert not is_office_time(vn(2025, 3, 5, 12))
    assert is_office_time(vn(2025, 3, 5, 11, 29))
    assert not is_office_time(vn(2025, 3, 5, 11, 30))


def test_lunch_break_is_excluded_from_working_time() -> None:
    assert CALENDAR.working_time_between(vn(2025, 3, 5, 11), vn(2025, 3, 5, 14)) == HOUR


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        CALENDAR.working_time_between(datetime(2025, 3, 5, 8), vn(2025, 3, 5, 9))
    with pytest.raises(ValueError):
        CALENDAR.add_working_time(datetime(2025, 3, 5, 8), HOUR)


# ---- arithmetic ----------------------------------------------------------------------------


def test_working_time_is_zero_when_end_is_not_after_start() -> None:
    assert CALENDAR.working_time_between(vn(2025, 3, 5, 9), vn(2025, 3, 5, 8)) == timedelta(0)


def test_working_time_over_a_year_counts_working_days() -> None:
    # 2025: 261 weekdays, 12 of them off (1/1, Tết ×5, 7/4, 30/4, 1/5, 2/5, 1/9, 2/9), +26/4.
    assert CALENDAR.working_time_between(vn(2025, 1, 1), vn(2026, 1, 1)) == 250 * 8 * HOUR


def test_friday_afternoon_plus_two_hours_lands_on_monday_morning() -> None:
    # Fri 7/3/2025 16:00: one hour left on Friday, the second from Monday 07:00.
    assert CALENDAR.add_working_time(vn(2025, 3, 7, 16), 2 * HOUR) == vn(2025, 3, 10, 8)


def test_friday_plus_two_hours_with_eight_o_clock_opening_is_monday_nine() -> None:
    calendar = WorkingCalendar(
        office_hours=WorkingCalendar.parse_office_hours("08:00-12:00,13:00-17:00")
    )
    assert calendar.add_working_time(vn(2025, 3, 7, 16), 2 * HOUR) == vn(2025, 3, 10, 9)


def test_adding_skips_tet_to_the_next_working_monday() -> None:
    assert CALENDAR.add_working_time(vn(2025, 1, 24, 16), 2 * HOUR) == vn(2025, 2, 3, 8)


def test_adding_exactly_to_closing_time_stays_on_that_day() -> None:
    assert CALENDAR.add_working_time(vn(2025, 3, 7, 16), HOUR) == vn(2025, 3, 7, 17)


def test_adding_whole_days_across_a_weekend() -> None:
    assert CALENDAR.add_working_time(vn(2025, 3, 6, 9), 3 * 8 * HOUR) == vn(2025, 3, 11, 9)


def test_going_backwards_across_a_weekend() -> None:
    assert CALENDAR.add_working_time(vn(2025, 3, 10, 8), -2 * HOUR) == vn(2025, 3, 7, 16)


def test_going_backwards_exactly_to_opening_time_stays_on_that_day() -> None:
    assert CALENDAR.add_working_time(vn(2025, 3, 10, 8), -HOUR) == vn(2025, 3, 10, 7)


def test_adding_zero_returns_start_in_utc() -> None:
    result = CALENDAR.add_working_time(vn(2025, 3, 8, 3), timedelta(0))
    assert result == vn(2025, 3, 8, 3)
    assert result.tzinfo is UTC


def test_next_office_moment_of_office_time_is_itself() -> None:
    assert CALENDAR.next_office_moment(vn(2025, 3, 5, 9)) == vn(2025, 3, 5, 9)


def test_next_office_moment_after_lunch() -> None:
    assert CALENDAR.next_office_moment(vn(2025, 3, 5, 12)) == vn(2025, 3, 5, 13, 30)


def test_next_office_moment_on_saturday_is_monday_opening() -> None:
    assert CALENDAR.next_office_moment(vn(2025, 3, 8, 10)) == vn(2025, 3, 10, 7)


def test_previous_office_end_on_sunday_is_friday_closing() -> None:
    assert CALENDAR.previous_office_end(vn(2025, 3, 9, 10)) == vn(2025, 3, 7, 17)


def test_previous_office_end_of_office_time_is_itself() -> None:
    assert CALENDAR.previous_office_end(vn(2025, 3, 5, 9)) == vn(2025, 3, 5, 9)


# ---- properties ----------------------------------------------------------------------------

moments = st.datetimes(
    min_value=datetime(2024, 12, 1), max_value=datetime(2027, 2, 1), timezones=st.just(VN_TZ)
)
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=2000))


def office_moments() -> st.SearchStrategy[datetime]:
    return moments.map(CALENDAR.next_office_moment)


@settings(max_examples=300)
@given(start=office_moments(), duration=durations)
def test_working_time_to_the_sum_is_the_duration(start: datetime, duration: timedelta) -> None:
    end = CALENDAR.add_working_time(start, duration)
    assert CALENDAR.working_time_between(start, end) == duration


@settings(max_examples=300)
@given(start=moments, duration=durations)
def test_working_time_to_the_sum_is_the_duration_from_any_start(
    start: datetime, duration: timedelta
) -> None:
    end = CALENDAR.add_working_time(start, duration)
    assert CALENDAR.working_time_between(start, end) == duration


@settings(max_examples=300)
@given(start=office_moments(), duration=durations)
def test_add_then_subtract_round_trips(start: datetime, duration: timedelta) -> None:
    there = CALENDAR.add_working_time(start, duration)
    assert CALENDAR.add_working_time(there, -duration) == start


@settings(max_examples=300)
@given(start=moments, duration=durations)
def test_subtracting_measures_back_the_duration(start: datetime, duration: timedelta) -> None:
    back = CALENDAR.add_working_time(start, -duration)
    assert back <= start
    assert CALENDAR.working_time_between(back, start) == duration


@settings(max_examples=300)
@given(start=moments, first=durations, second=durations)
def test_adding_is_monotonic_in_duration(
    start: datetime, first: timedelta, second: timedelta
) -> None:
    low, high = sorted((first, second))
    assert CALENDAR.add_working_time(start, low) <= CALENDAR.add_working_time(start, high)


@settings(max_examples=300)
@given(first=moments, second=moments, duration=durations)
def test_adding_is_monotonic_in_start(
    first: datetime, second: datetime, duration: timedelta
) -> None:
    early, late = sorted((first, second))
    assert CALENDAR.add_working_time(early, duration) <= CALENDAR.add_working_time(late, duration)


@settings(max_examples=300)
@given(start=moments, first=moments, second=moments)
def test_working_time_is_monotonic_in_end(
    start: datetime, first: datetime, second: datetime
) -> None:
    early, late = sorted((first, second))
    assert CALENDAR.working_time_between(start, early) <= CALENDAR.working_time_between(start, late)


@settings(max_examples=300)
@given(start=moments, middle=moments, end=moments)
def test_working_time_is_additive(start: datetime, middle: datetime, end: datetime) -> None:
    a, b, c = sorted((start, middle, end))
    whole = CALENDAR.working_time_between(a, c)
    assert whole == CALENDAR.working_time_between(a, b) + CALENDAR.working_time_between(b, c)


@settings(max_examples=300)
@given(start=moments, end=moments)
def test_working_time_matches_a_day_by_day_count(start: datetime, end: datetime) -> None:
    if end < start:
        start, end = end, start
    end = min(end, start + timedelta(days=40))
    expected = timedelta(0)
    day = start.date()
    while day <= end.date():
        if CALENDAR.is_working_day(day):
            for open_at, close_at in DEFAULT_OFFICE_HOURS:
                lo = max(datetime.combine(day, open_at, tzinfo=VN_TZ), start)
                hi = min(datetime.combine(day, close_at, tzinfo=VN_TZ), end)
                expected += max(hi - lo, timedelta(0))
        day += timedelta(days=1)
    assert CALENDAR.working_time_between(start, end) == expected


@settings(max_examples=300)
@given(moment=moments)
def test_next_office_moment_is_office_time_and_no_earlier_office_time(moment: datetime) -> None:
    result = CALENDAR.next_office_moment(moment)
    assert result >= moment
    assert is_office_time(result)
    assert CALENDAR.working_time_between(moment, result) == timedelta(0)


@settings(max_examples=300)
@given(moment=moments)
def test_previous_office_end_leaves_no_office_time_before_moment(moment: datetime) -> None:
    result = CALENDAR.previous_office_end(moment)
    assert result <= moment
    assert CALENDAR.working_time_between(result, moment) == timedelta(0)
    assert is_office_time(result - timedelta(microseconds=1))


@settings(max_examples=200)
@given(
    start=moments,
    duration=durations,
    flips=st.dictionaries(
        st.dates(min_value=date(2024, 12, 1), max_value=date(2025, 6, 30)), st.booleans()
    ),
)
def test_round_trip_holds_with_overrides_and_other_hours(
    start: datetime, duration: timedelta, flips: dict[date, bool]
) -> None:
    calendar = WorkingCalendar(
        office_hours=WorkingCalendar.parse_office_hours("08:00-12:00,13:00-16:15"),
        overrides=flips,
    )
    start = calendar.next_office_moment(start)
    end = calendar.add_working_time(start, duration)
    assert calendar.working_time_between(start, end) == duration
    assert calendar.add_working_time(end, -duration) == start
