"""The month's forecast, pure: worked by hand through the tally that counts ``on_time_pct``.

The month is November 2024 asked on 06/11 10:00 (Vietnam time), as ``GET /kpis`` does without
``from``/``to``: the period is 01/11..06/11, the window runs from now to 01/12 00:00.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.reconciler.kpis.forecast import Forecast, forecast, forecast_read
from services.reconciler.kpis.formulas import (
    KpiInput,
    KpiTally,
    Period,
    Undecided,
    UnitKpis,
    Window,
    ended_at,
    percent,
)
from shared.clock import VN_TZ

NOW = datetime(2024, 11, 6, 10, tzinfo=VN_TZ)
MONTH = Period(date(2024, 11, 1), date(2024, 11, 6), as_of=NOW)
MONTH_END = datetime(2024, 12, 1, tzinfo=VN_TZ)
RECEIVED = datetime(2024, 11, 1, 8, tzinfo=VN_TZ)
HOLDER = "tranthib.vpdkdd"


def vn(day: int, hour: int = 17, month: int = 11) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=VN_TZ)


def closed(number: int, *, due: datetime, finished: datetime) -> KpiInput:
    """Finished (9): decided, on time when ``finished`` ≤ ``due``."""
    return KpiInput(
        code=f"D{number:04d}",
        status=9,
        channel=1,
        digitised=True,
        received_at=RECEIVED,
        due_at=due,
        finished_at=finished,
    )


def still_open(code: str, *, due: datetime | None, holder: str | None = HOLDER) -> KpiInput:
    """Being processed (4): no end yet."""
    return KpiInput(
        code=code,
        status=4,
        channel=1,
        digitised=True,
        received_at=RECEIVED,
        due_at=due,
        responsible=holder,
    )


def tallied(rows: list[KpiInput], period: Period = MONTH) -> tuple[UnitKpis, Forecast]:
    """The tally of ``GET /kpis`` (with the period's window), then its forecast."""
    tally = KpiTally(period, window=Window.of(period))
    for each in rows:
        tally.add_dossier(each)
    kpis = tally.result()
    return kpis, forecast(kpis, len(tally.undecided), tally.undecided)


def decided(on_time: int, late: int) -> list[KpiInput]:
    """``on_time`` finished before their due date; ``late`` still open past theirs."""
    rows = [closed(n, due=vn(12), finished=vn(4)) for n in range(on_time)]
    return rows + [still_open(f"L{n:04d}", due=vn(5)) for n in range(late)]


def codes(found: tuple[Undecided, ...]) -> list[str]:
    return [each.dossier_code for each in found]


def test_worked_example_one_late_is_enough() -> None:
    """50 decided, 49 of them on time (the 50th open, due 05/11: past due), and 5 undecided.

    Today 54/55 = 98.18 % (the undecided count on time until their due date): the best case.
    All five late: 49/55 = 89.09 %. One late: 53/55 = 96.36 % < 98 → the one due first decides.
    """
    undecided = [
        still_open("U3", due=vn(20)),
        still_open("U1", due=NOW, holder="lethic.vpdkdd"),  # due now: not past due yet
        still_open("U5", due=vn(30, 23)),
        still_open("U2", due=vn(13)),
        still_open("U4", due=vn(20)),
    ]
    kpis, found = tallied(decided(49, 1) + undecided)
    assert (kpis.with_due_date, kpis.on_time, kpis.on_time_pct) == (55, 54, 98.18)
    assert found.on_time_pct == found.on_time_pct_best == 98.18
    assert found.on_time_pct_worst == 89.09
    assert found.undecided == 5
    assert found.deciding == (Undecided("U1", NOW, "lethic.vpdkdd"),)  # the first due
    assert found.outlook == "at_risk"
    assert forecast_read(found) == {
        "on_time_pct_best": 98.18,
        "on_time_pct_worst": 89.09,
        "deciding": [
            {
                "dossier_code": "U1",
                "due_at": "2024-11-06T10:00:00+07:00",
                "responsible": "lethic.vpdkdd",
            }
        ],
    }


def test_worked_example_three_must_slip() -> None:
    """200 decided (198 on time) and 5 undecided: 203/205 = 99.02 % today. Late one by one:
    202/205 = 98.54 %, 201/205 = 98.05 %, 200/205 = 97.56 % → the three due first; U2 and U3
    are due at the same moment, so the code orders them."""
    undecided = [
        still_open("U3", due=vn(20)),
        still_open("U1", due=vn(7)),
        still_open("U2", due=vn(20)),
        still_open("U4", due=vn(25)),
        still_open("U5", due=vn(28)),
    ]
    _, found = tallied(decided(198, 2) + undecided)
    assert (found.on_time_pct_best, found.on_time_pct_worst) == (99.02, 96.59)  # 198/205
    assert codes(found.deciding) == ["U1", "U2", "U3"]


def test_what_is_not_undecided() -> None:
    """Only open dossiers due from now to the month's end are undecided."""
    rows = [
        still_open("PAST", due=NOW - timedelta(seconds=1)),  # past due: late whatever happens
        still_open("AT-MONTH-END", due=MONTH_END),  # due when the month ends: on time for it
        still_open("DECEMBER", due=vn(10, month=12)),  # due after the month: on time for it
        still_open("NO-DUE", due=None),  # without a due date: not in the share at all
        closed(1, due=vn(20), finished=vn(5)),  # ended: decided (on time)
        KpiInput(  # withdrawn (7): ended when the first snapshot showed it
            code="WITHDRAWN",
            status=7,
            channel=1,
            digitised=True,
            received_at=RECEIVED,
            due_at=vn(20),
            status_first_seen_at=vn(3),
        ),
        still_open("IN", due=vn(30)),
    ]
    kpis, found = tallied(rows)
    assert (kpis.with_due_date, kpis.on_time) == (6, 5)  # PAST is late
    assert found.undecided == 1  # IN
    assert (found.on_time_pct_best, found.on_time_pct_worst) == (83.33, 66.67)
    assert found.outlook == "under" and found.deciding == ()  # under 98 % already


def test_a_month_that_is_over_has_nothing_left_to_decide() -> None:
    """October asked in November: the open dossiers are late or on time by now."""
    october = Period(date(2024, 10, 1), date(2024, 10, 31), as_of=NOW)
    rows = [
        KpiInput("OCT-1", 4, 1, True, datetime(2024, 10, 28, tzinfo=VN_TZ), vn(20)),
        KpiInput("OCT-2", 4, 1, True, datetime(2024, 10, 2, tzinfo=VN_TZ), vn(9, month=10)),
    ]
    kpis, found = tallied(rows, october)
    assert found.undecided == 0
    assert found.on_time_pct == found.on_time_pct_best == found.on_time_pct_worst == 50.0
    assert kpis.on_time_pct == 50.0 and found.deciding == ()


def test_safe_and_empty() -> None:
    _, safe = tallied([*decided(100, 0), still_open("U1", due=vn(9))])
    assert (safe.on_time_pct_best, safe.on_time_pct_worst) == (100.0, 99.01)
    assert safe.outlook == "safe" and safe.deciding == ()
    _, empty = tallied([still_open("NO-DUE", due=None)])
    assert (empty.on_time_pct_best, empty.on_time_pct_worst, empty.deciding) == (None, None, ())
    assert empty.outlook == "empty"


def pending(count: int) -> list[Undecided]:
    return [Undecided(f"U{n:02d}", NOW + timedelta(hours=n), None) for n in range(count)]


def kpis_of(on_time: int, whole: int) -> UnitKpis:
    return UnitKpis(whole, whole, on_time, 0, 0, 0, 0)


def test_under_is_judged_on_the_rounded_share_as_the_board_does() -> None:
    """19,601 of 20,000 on time with 3 undecided: one late, 98.00 %; two late, 97.995 %, shown
    as 98.00 % (met); three late, 97.99 %: under."""
    found = forecast(kpis_of(19_601, 20_000), 3, pending(3))
    assert percent(19_599, 20_000) == 98.0
    assert codes(found.deciding) == ["U00", "U01", "U02"]


def test_only_the_deciding_dossiers_need_be_given() -> None:
    """The first due are enough to name the deciding ones; fewer than those is an error."""
    found = forecast(kpis_of(19_601, 20_000), 40, reversed(pending(3)))
    assert codes(found.deciding) == ["U00", "U01", "U02"]  # three of 40 (see above)
    with pytest.raises(ValueError, match="deciding"):
        forecast(kpis_of(203, 205), 5, pending(2))  # three decide (worked example above)


def test_more_undecided_than_on_time_is_refused() -> None:
    with pytest.raises(ValueError, match="undecided"):
        forecast(kpis_of(1, 3), 2, pending(2))


def test_the_month_end_is_the_next_months_first_instant() -> None:
    assert MONTH.month_end == MONTH_END
    assert Period(date(2024, 12, 1), date(2024, 12, 31)).month_end == datetime(
        2025, 1, 1, tzinfo=VN_TZ
    )
    assert Window.of(Period(date(2024, 11, 1), date(2024, 11, 6))) is None  # no "now"


@given(
    whole=st.integers(min_value=1, max_value=5_000),
    data=st.data(),
)
def test_deciding_is_the_fewest_that_break_the_target(whole: int, data: st.DataObject) -> None:
    on_time = data.draw(st.integers(min_value=0, max_value=whole))
    count = data.draw(st.integers(min_value=0, max_value=min(on_time, 60)))
    found = forecast(kpis_of(on_time, whole), count, reversed(pending(count)))
    assert found.on_time_pct_best == percent(on_time, whole)
    assert found.on_time_pct_worst == percent(on_time - count, whole)
    late = len(found.deciding)
    if found.outlook == "at_risk":
        assert 1 <= late <= count
        assert found.deciding == tuple(pending(count)[:late])  # the first due
        under, before = percent(on_time - late, whole), percent(on_time - late + 1, whole)
        assert under is not None and before is not None and under < 98 <= before
    else:
        assert late == 0


@pytest.mark.parametrize("status", [9, 10, 3, 7, 8])
def test_a_closed_dossier_is_never_undecided(status: int) -> None:
    row = KpiInput(
        "X", status, 1, True, RECEIVED, vn(20), finished_at=vn(4), returned_at=vn(4),
        refused_at=vn(4), status_first_seen_at=vn(4),
    )  # fmt: skip
    assert ended_at(row) is not None
    assert not Window(NOW, MONTH_END).undecided(row)
