"""Where the time went (contract §7), worked by hand over the working-day calendar.

Office hours 07:00–11:30 and 13:30–17:00, Monday to Friday, minus Vietnamese public holidays
(30/4, 1/5 and the substituted 2/5 in 2025).
"""

from __future__ import annotations

from datetime import datetime

import pytest

from services.reconciler.lateness.formulas import StepFacts, lateness
from shared.calendar import WorkingCalendar
from shared.clock import VN_TZ

CALENDAR = WorkingCalendar()
UNIT = "000.00.12.H08"


def vn(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=VN_TZ)


def step(
    officer: str, start: datetime, allowed: datetime | None = None, status: int = 4
) -> StepFacts:
    return StepFacts(officer, "Phòng Đăng ký", status, start, allowed)


def test_the_lunch_break_is_no_ones_overrun() -> None:
    found = lateness(
        [step("an", vn(3, 5, 8), allowed=vn(3, 5, 10))],
        due_at=vn(3, 5, 12),
        end=vn(3, 5, 14, 30),
        unit_code=UNIT,
        calendar=CALENDAR,
    )
    assert found.late
    assert [s.overrun_working_hours for s in found.steps] == [2.5]  # 10:00–11:30, 13:30–14:30


def test_a_weekend_is_no_ones_overrun() -> None:
    found = lateness(
        [step("an", vn(3, 6, 8), allowed=vn(3, 7, 16))],  # Thursday → Friday 16:00
        due_at=vn(3, 7, 17),
        end=vn(3, 10, 9),  # Monday 09:00
        unit_code=UNIT,
        calendar=CALENDAR,
    )
    assert found.overrun_working_hours == 3.0  # Friday 16–17, Monday 07–09


def test_public_holidays_are_no_ones_overrun() -> None:
    found = lateness(
        [step("an", vn(4, 28, 8), allowed=vn(4, 29, 16))],  # Tuesday 29/4 16:00
        due_at=vn(4, 29, 17),
        end=vn(5, 5, 8),  # Monday 5/5: 30/4, 1/5, 2/5 off, then the weekend
        unit_code=UNIT,
        calendar=CALENDAR,
    )
    assert found.overrun_working_hours == 2.0  # Tuesday 16–17, Monday 07–08


@pytest.mark.parametrize("waiting", [5, 6], ids=["supplement", "financial-obligation"])
def test_waiting_on_the_applicant_is_no_ones_overrun(waiting: int) -> None:
    found = lateness(
        [
            step("an", vn(3, 5, 8), allowed=vn(3, 5, 9)),
            step("an", vn(3, 5, 10), status=waiting),  # the applicant's turn until Thursday
            step("binh", vn(3, 6, 10), allowed=vn(3, 6, 11)),
        ],
        due_at=vn(3, 6, 12),
        end=vn(3, 6, 16),
        unit_code=UNIT,
        calendar=CALENDAR,
    )
    assert [(s.officer, s.overrun_working_hours) for s in found.steps] == [
        ("an", 1.0),  # 09:00–10:00
        ("an", 0.0),  # waiting on the applicant
        ("binh", 3.0),  # 11:00–11:30 and 13:30–16:00
    ]
    assert found.overrun_working_hours == 4.0


def test_a_step_without_allowance_is_charged_nothing() -> None:
    found = lateness(
        [step("an", vn(3, 5, 8), allowed=vn(3, 5, 10)), step("binh", vn(3, 5, 11))],
        due_at=vn(3, 5, 12),
        end=vn(3, 7, 16),
        unit_code=UNIT,
        calendar=CALENDAR,
    )
    assert [(s.officer, s.overrun_working_hours) for s in found.steps] == [
        ("an", 1.0),
        ("binh", 0.0),
    ]


def test_without_any_allowance_the_holder_at_the_due_date_carries_the_lateness() -> None:
    found = lateness(
        [step("an", vn(3, 5, 8)), step("binh", vn(3, 6, 8))],
        due_at=vn(3, 5, 16),
        end=vn(3, 6, 10),
        unit_code=UNIT,
        calendar=CALENDAR,
    )
    [charged] = found.steps
    assert (charged.officer, charged.overrun_working_hours) == ("an", 4.0)  # Wed 16–17, Thu 07–10


def test_without_allowance_the_wait_on_the_applicant_still_does_not_count() -> None:
    found = lateness(
        [
            step("an", vn(3, 5, 8)),
            step("an", vn(3, 5, 15), status=5),
            step("binh", vn(3, 6, 9)),
        ],
        due_at=vn(3, 5, 14),
        end=vn(3, 6, 11),
        unit_code=UNIT,
        calendar=CALENDAR,
    )
    # 14:00 → Thursday 11:00 is 7 working hours, 4 of them waiting (Wed 15–17, Thu 07–09).
    [charged] = found.steps
    assert (charged.officer, charged.overrun_working_hours) == ("an", 3.0)


def test_a_dossier_with_no_steps_charges_its_unit() -> None:
    found = lateness([], due_at=vn(3, 5, 10), end=vn(3, 5, 15), unit_code=UNIT, calendar=CALENDAR)
    [charged] = found.steps
    assert (charged.officer, charged.unit_code, charged.overrun_working_hours) == (None, UNIT, 3.0)


def test_a_dossier_on_time_has_no_lateness() -> None:
    found = lateness(
        [step("an", vn(3, 5, 8), allowed=vn(3, 5, 10))],
        due_at=vn(3, 5, 12),
        end=vn(3, 5, 12),  # at the due date itself: on time
        unit_code=UNIT,
        calendar=CALENDAR,
    )
    assert (found.late, found.steps, found.overrun_working_hours) == (False, (), 0.0)


def test_a_dossier_without_due_date_is_never_late() -> None:
    found = lateness([], due_at=None, end=vn(3, 5, 15), unit_code=UNIT, calendar=CALENDAR)
    assert not found.late


def test_an_open_late_dossier_counts_until_now() -> None:
    now = vn(3, 6, 9)
    found = lateness(
        [step("an", vn(3, 5, 8), allowed=vn(3, 5, 16))],
        due_at=vn(3, 5, 17),
        end=now,
        unit_code=UNIT,
        calendar=CALENDAR,
    )
    assert found.overrun_working_hours == 3.0  # Wed 16–17, Thu 07–09
    assert found.steps[0].ended_at == now
