"""The pure KPI formulas: end moments per QĐ 766, period bounds, rounding, counting."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.reconciler.kpis.formulas import (
    DeskReportInput,
    KpiInput,
    KpiTally,
    Period,
    PeriodError,
    UnitKpis,
    check_period,
    discrepancy_counts,
    end_moment,
    is_on_time,
    percent,
)
from shared.clock import VN_TZ


def compute(rows: list[KpiInput], reports: list[DeskReportInput], period: Period) -> UnitKpis:
    """The KPIs of one unit, fed to the tally as the service feeds it."""
    tally = KpiTally(period)
    for row in rows:
        tally.add_dossier(row)
    for report in reports:
        tally.add_report(report)
    return tally.result()


OCTOBER = Period(date(2024, 10, 1), date(2024, 10, 31))
PERIOD_END = datetime(2024, 11, 1, tzinfo=VN_TZ)
RECEIVED = datetime(2024, 10, 2, 8, tzinfo=VN_TZ)
DUE = datetime(2024, 10, 9, 8, tzinfo=VN_TZ)
FINISHED = datetime(2024, 10, 8, 16, tzinfo=VN_TZ)
RETURNED = datetime(2024, 10, 12, 10, tzinfo=VN_TZ)
REFUSED = datetime(2024, 10, 2, 10, tzinfo=VN_TZ)
EMITTED = datetime(2024, 10, 15, 9, tzinfo=VN_TZ)


def row(status: int | None, **fields: object) -> KpiInput:
    values: dict[str, object] = {
        "code": "000.00.12.H08-241002-0001",
        "status": status,
        "channel": 1,
        "digitised": True,
        "received_at": RECEIVED,
        "due_at": DUE,
        "status_first_seen_at": EMITTED,
    }
    values.update(fields)
    return KpiInput(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "fields", "expected"),
    [
        (9, {"finished_at": FINISHED}, FINISHED),
        (10, {"finished_at": FINISHED, "returned_at": RETURNED}, FINISHED),  # first of 9 and 10
        (10, {"returned_at": RETURNED}, RETURNED),  # 10 without NgayKetThucXuLy
        (3, {"refused_at": REFUSED}, REFUSED),
        (7, {}, EMITTED),
        (8, {}, EMITTED),
        (7, {"finished_at": FINISHED}, FINISHED),  # reached 9 before it was withdrawn
        (9, {}, EMITTED),  # closed without its stamp: the first snapshot that showed it
        # open statuses have no end yet, whatever stale stamps they carry
        (1, {}, PERIOD_END),
        (2, {}, PERIOD_END),
        (4, {"finished_at": FINISHED, "returned_at": RETURNED}, PERIOD_END),
        (5, {}, PERIOD_END),
        (6, {}, PERIOD_END),
        (None, {}, PERIOD_END),  # only progress steps known
    ],
)
def test_end_moment_per_status(
    status: int | None, fields: dict[str, datetime], expected: datetime
) -> None:
    assert end_moment(row(status, **fields), open_end=PERIOD_END) == expected


def test_on_time_is_end_at_or_before_the_due_date() -> None:
    assert is_on_time(row(9, finished_at=DUE), open_end=PERIOD_END) is True  # end = due
    late = DUE + timedelta(microseconds=1)
    assert is_on_time(row(9, finished_at=late), open_end=PERIOD_END) is False
    assert is_on_time(row(9, finished_at=DUE, due_at=None), open_end=PERIOD_END) is None


def test_a_period_is_whole_vietnamese_days() -> None:
    assert OCTOBER.start_at == datetime(2024, 9, 30, 17, tzinfo=UTC)
    assert OCTOBER.end_at == datetime(2024, 10, 31, 17, tzinfo=UTC)
    assert OCTOBER.contains(datetime(2024, 10, 1, 0, 0, tzinfo=VN_TZ))
    assert OCTOBER.contains(datetime(2024, 10, 31, 23, 59, 59, 999999, tzinfo=VN_TZ))
    assert not OCTOBER.contains(datetime(2024, 9, 30, 23, 59, 59, 999999, tzinfo=VN_TZ))
    assert not OCTOBER.contains(datetime(2024, 11, 1, 0, 0, tzinfo=VN_TZ))
    assert not OCTOBER.contains(None)


def test_open_dossiers_are_measured_no_later_than_now() -> None:
    now = datetime(2024, 10, 20, 10, tzinfo=VN_TZ)
    running = Period(date(2024, 10, 1), date(2024, 10, 31), as_of=now)
    assert running.open_end == now
    assert Period(date(2024, 10, 1), date(2024, 10, 31), as_of=PERIOD_END).open_end == PERIOD_END
    # open, due 25/10: measured at now (20/10) → on time; at the period end it would be late
    not_yet_due = row(4, due_at=datetime(2024, 10, 25, 8, tzinfo=VN_TZ))
    # open, due 09/10 → late either way
    overdue = row(4)
    kpis = compute([not_yet_due, overdue], [], running)
    assert (kpis.on_time, kpis.with_due_date, kpis.on_time_pct) == (1, 2, 50.0)
    assert compute([not_yet_due, overdue], [], OCTOBER).on_time_pct == 0.0


@pytest.mark.parametrize(
    ("part", "whole", "expected"),
    [
        (0, 0, None),
        (0, 5, 0.0),
        (5, 5, 100.0),
        (2, 3, 66.67),
        (1, 3, 33.33),
        (1, 8, 12.5),
        (1, 800, 0.13),  # 0.125 rounds half-up, not to even
        (3, 800, 0.38),  # 0.375
        (12, 13, 92.31),
    ],
)
def test_percent_rounds_half_up_to_two_decimals(
    part: int, whole: int, expected: float | None
) -> None:
    assert percent(part, whole) == expected


def test_check_period() -> None:
    check_period(date(2024, 10, 1), date(2024, 10, 1))  # one day
    check_period(date(2024, 1, 1), date(2024, 12, 31))  # 366 days
    with pytest.raises(PeriodError, match="367 days"):
        check_period(date(2023, 3, 1), date(2024, 3, 1))
    with pytest.raises(PeriodError, match="sau ngày kết thúc"):
        check_period(date(2024, 10, 2), date(2024, 10, 1))


def test_compute_counts_received_online_digitised_and_due_dates() -> None:
    rows = [
        row(9, finished_at=FINISHED),  # on time
        row(10, finished_at=RETURNED, returned_at=RETURNED, channel=2),  # late, online
        row(4, due_at=None, digitised=False),  # no due date, not digitised
        row(4, digitised=None),  # late at period end; digitised unknown → not digitised
        row(9, received_at=datetime(2024, 11, 1, tzinfo=VN_TZ)),  # outside: ignored
        row(9, received_at=None),  # never received: ignored
    ]
    kpis = compute(rows, [], OCTOBER)
    assert kpis.received == 4
    assert (kpis.on_time, kpis.with_due_date, kpis.without_due_date) == (1, 3, 1)
    assert kpis.on_time_pct == 33.33  # 1 ÷ 3
    assert kpis.online_pct == 25.0  # 1 ÷ 4
    assert kpis.digitised_pct == 50.0  # 2 ÷ 4
    assert kpis.in_system_pct is None  # no desk report


def test_in_system_counts_distinct_reported_dossiers_of_the_period() -> None:
    at = datetime(2024, 10, 20, 9, tzinfo=VN_TZ)
    reports = [
        DeskReportInput("A", at, known=True),
        DeskReportInput("A", at + timedelta(hours=1), known=True),  # same dossier again
        DeskReportInput("B", at, known=False),
        DeskReportInput("C", at, known=False),
        DeskReportInput("D", datetime(2024, 11, 1, tzinfo=VN_TZ), known=False),  # outside
    ]
    kpis = compute([], reports, OCTOBER)
    assert (kpis.reported_known, kpis.reported) == (1, 3)
    assert kpis.in_system_pct == 33.33  # A of A, B, C
    assert kpis.received == 0
    assert kpis.on_time_pct is kpis.online_pct is kpis.digitised_pct is None


def test_discrepancy_counts_name_every_kind() -> None:
    counts = discrepancy_counts([("DUE_SOON", 2), ("STALLED", 1), ("DUE_SOON", 1)])
    assert counts == {
        "RETURNED_BUT_OPEN": 0,
        "TIME_MISMATCH": 0,
        "STATUS_CONFLICT": 0,
        "NOT_IN_SYSTEM": 0,
        "OVERDUE_NO_APOLOGY": 0,
        "DUE_SOON": 3,
        "DATES_REWRITTEN": 0,
        "STALLED": 1,
    }


moments = st.datetimes(
    min_value=datetime(2024, 9, 1), max_value=datetime(2024, 12, 1), timezones=st.just(VN_TZ)
)


@given(
    st.lists(
        st.builds(
            KpiInput,
            code=st.just("X"),
            status=st.none() | st.integers(1, 10),
            channel=st.none() | st.integers(1, 3),
            digitised=st.none() | st.booleans(),
            received_at=st.none() | moments,
            due_at=st.none() | moments,
            finished_at=st.none() | moments,
            returned_at=st.none() | moments,
            refused_at=st.none() | moments,
            status_first_seen_at=st.none() | moments,
        ),
        max_size=30,
    )
)
def test_shares_stay_within_bounds_and_order_does_not_matter(rows: list[KpiInput]) -> None:
    kpis = compute(rows, [], OCTOBER)
    assert kpis.on_time <= kpis.with_due_date <= kpis.received
    assert kpis.online <= kpis.received and kpis.digitised <= kpis.received
    for share in (kpis.on_time_pct, kpis.online_pct, kpis.digitised_pct):
        assert share is None or 0 <= share <= 100
    assert compute(list(reversed(rows)), [], OCTOBER) == kpis
