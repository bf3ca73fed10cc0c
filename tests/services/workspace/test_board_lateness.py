"""The board's late-dossier accountability (contract §7 on the §6 board), on PostgreSQL and
SQLite: the week's dossiers, measured like the KPI row, worked out by hand.

Week 2024-W44 runs Monday 28/10 to Sunday 03/11; the clock (TEST_NOW) is Wednesday 06/11 10:00,
so the week is over and is measured at its end, Monday 04/11 00:00. Office hours 07:00–11:30 and
13:30–17:00, no holiday in these days. Dossiers received in W44:

- L1 (NEW, Đất đai), due Tue 29/10 17:00, finished Wed 30/10 15:00. Steps: ``an`` from Mon
  08:00, allowed until Tue 10:00; ``binh`` from Wed 09:00, allowed until Wed 10:00. Overrun:
  an 7 h (Tue 10–11:30 and 13:30–17, Wed 07–09), binh 3 h (Wed 10–11:30, 13:30–15). No apology.
- L2 (NEW, Hộ tịch), promised Wed 30/10 17:00; an apology made Thu 31/10 08:00 — after that
  date: late — moves it to Fri 01/11 10:00. One step, ``binh`` from Tue 08:00, no allowance;
  open at the week's end. The holder at the due date carries Fri 10–11:30 and 13:30–17 = 5 h
  (measured today it would be 24 h).
- L4 (OLD, merged into NEW; Đất đai), due Wed 30/10 17:00, finished Thu 31/10 09:00, no step:
  Thu 07–09 = 2 h that no officer held.
- OK (NEW, Đất đai) finished Thursday, due Friday: on time. L3 (OTHER, no field), due Tue
  29/10 17:00 and open: Wed, Thu, Fri = 24 h, outside NEW's scope.

So NEW: 3 late dossiers, 17 h, without apology L1 and L4 (2), late apology L2 (1).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reconciler.kpis import review
from services.reconciler.kpis.formulas import IsoWeek
from services.reconciler.kpis.service import Scope
from services.reconciler.lateness.service import LatenessReport
from services.workspace.pages import board_lateness
from shared.calendar import WorkingCalendar
from shared.db import unit_of_work
from shared.directory import load_directory
from shared.dvcqg import format_thoi_diem
from shared.models import Officer
from tests.conftest import TEST_NOW
from tests.factories import dossier_code, progress
from tests.services.reconciler.kpis.conftest import NEW, OLD, OTHER, dossier, load, unit, vn

W44 = IsoWeek(2024, 44)
CALENDAR = WorkingCalendar()
L1, L2, OK = (dossier_code(n) for n in (61, 62, 64))
L4 = dossier_code(63, unit=OLD)
L3 = dossier_code(65, unit=OTHER)
PROVINCE = "000.00.00.H08"
UNITS = [
    unit(PROVINCE),
    unit(NEW, parent=PROVINCE),
    unit(OLD, parent=PROVINCE, replaced_by=NEW),
    unit(OTHER, parent=PROVINCE),
]


def step(
    code: str, number: int, officer: str, start: datetime, allowed: datetime | None
) -> dict[str, Any]:
    envelope = progress(
        code, event_id=f"step-{code}-{number}", emitted_at=start, step_at=start, officer=officer
    )
    if allowed is not None:
        envelope["data"]["NgayKetThucTheoQuyDinh"] = format_thoi_diem(allowed)
    return envelope


ENVELOPES = [
    dossier(
        L1, status=9, received=vn(10, 28), due=vn(10, 29, 17), TenLinhVuc="Đất đai",
        NgayKetThucXuLy=format_thoi_diem(vn(10, 30, 15)),
    ),
    step(L1, 1, "an.vpdkdd", vn(10, 28), vn(10, 29, 10)),
    step(L1, 2, "binh.vpdkdd", vn(10, 30, 9), vn(10, 30, 10)),
    dossier(
        L2, status=4, received=vn(10, 29), due=vn(10, 30, 17), TenLinhVuc="Hộ tịch",
        DanhSachXinLoi=[
            {
                "NgayYeuCau": format_thoi_diem(vn(10, 31, 8)),
                "NgayHenTraTruoc": format_thoi_diem(vn(10, 30, 17)),
                "NgayHenTraMoi": format_thoi_diem(vn(11, 1, 10)),
                "LyDo": "Chờ ý kiến phối hợp",
            }
        ],
    ),
    step(L2, 1, "binh.vpdkdd", vn(10, 29), None),
    dossier(
        L4, status=9, unit=OLD, received=vn(10, 30), due=vn(10, 30, 17), TenLinhVuc="Đất đai",
        NgayKetThucXuLy=format_thoi_diem(vn(10, 31, 9)),
    ),
    dossier(
        OK, status=9, received=vn(10, 28), due=vn(11, 1, 17), TenLinhVuc="Đất đai",
        NgayKetThucXuLy=format_thoi_diem(vn(10, 31, 9)),
    ),
    dossier(L3, status=4, unit=OTHER, received=vn(10, 28), due=vn(10, 29, 17)),
]  # fmt: skip


@pytest.fixture
async def week_44(engine: AsyncEngine) -> None:
    await load(engine, units=UNITS, envelopes=ENVELOPES)
    async with unit_of_work(engine, "test") as connection:
        await connection.execute(
            insert(Officer).values(
                account="binh.vpdkdd", full_name="Lê Văn Bình", unit_code=NEW, role="handler",
                email=None, zalo_user_id=None, phone=None, active=True, updated_at=TEST_NOW,
            )
        )  # fmt: skip


async def accountability(
    engine: AsyncEngine, root: str = NEW, *, now: datetime = TEST_NOW
) -> dict[str, LatenessReport]:
    async with unit_of_work(engine, "test") as connection:
        scope = Scope.of(await load_directory(connection), unit=root, key_units=None)
        return await board_lateness.accountability(
            connection, scope=scope, week=W44, now=now, calendar=CALENDAR
        )


def figures(report: LatenessReport) -> list[tuple[Any, ...]]:
    return [
        (
            item["key"],
            item["label"],
            item["late_dossiers"],
            item["overrun_working_hours"],
            item["without_apology"],
            item["late_apology"],
        )
        for item in report.items
    ]


@pytest.mark.usefixtures("week_44")
async def test_units_carry_the_overrun_of_their_late_dossiers_merged_codes_included(
    engine: AsyncEngine,
) -> None:
    found = await accountability(engine)
    assert figures(found["late_units"]) == [(NEW, f"Đơn vị {NEW}", 3, 17.0, 2, 1)]
    assert found["late_units"].total == 3


@pytest.mark.usefixtures("week_44")
async def test_officers_carry_their_own_steps_named_from_the_directory(
    engine: AsyncEngine,
) -> None:
    found = await accountability(engine)
    assert figures(found["late_officers"]) == [
        ("binh.vpdkdd", "Lê Văn Bình", 2, 8.0, 1, 1),  # L1's 3 h and L2's 5 h
        ("an.vpdkdd", "an.vpdkdd", 1, 7.0, 1, 0),  # not in the directory: the account
        ("(chưa có cán bộ)", "(chưa có cán bộ)", 1, 2.0, 1, 0),  # L4 had no step
    ]


@pytest.mark.usefixtures("week_44")
async def test_late_dossiers_are_counted_per_field(engine: AsyncEngine) -> None:
    found = await accountability(engine)
    assert figures(found["late_fields"]) == [
        ("Đất đai", "Đất đai", 2, 12.0, 2, 0),
        ("Hộ tịch", "Hộ tịch", 1, 5.0, 0, 1),
    ]


@pytest.mark.usefixtures("week_44")
async def test_the_late_dossiers_are_those_the_on_time_card_counts_late(
    engine: AsyncEngine,
) -> None:
    found = await accountability(engine, PROVINCE)
    async with unit_of_work(engine, "test") as connection:
        scope = Scope.of(await load_directory(connection), unit=PROVINCE, key_units=None)
        kpis = await review.week_kpis(connection, scope=scope, week=W44, now=TEST_NOW)
    assert kpis.tallies.totals is not None
    week = kpis.tallies.totals[-1].result()
    assert found["late_units"].total == week.with_due_date - week.on_time == 4  # L3 too
    assert [item["key"] for item in found["late_units"].items] == [OTHER, NEW]  # 24 h, 17 h


@pytest.mark.usefixtures("week_44")
async def test_a_past_week_is_measured_at_its_end_and_the_current_week_now(
    engine: AsyncEngine,
) -> None:
    """During W44, on Friday 01/11 16:00, L2 (due 10:00 that day) is 4 h late so far: 10–11:30
    and 13:30–16:00; after the week, its open dossier stops counting at Sunday's end."""
    assert board_lateness.measured_at(W44, TEST_NOW) == vn(11, 4, 0)
    during = vn(11, 1, 16)
    assert board_lateness.measured_at(W44, during) == during
    fields = (await accountability(engine, now=during))["late_fields"]
    assert ("Hộ tịch", "Hộ tịch", 1, 4.0, 0, 1) in figures(fields)


@pytest.mark.usefixtures("week_44")
async def test_a_unit_outside_the_scope_is_left_out(engine: AsyncEngine) -> None:
    found = await accountability(engine, OTHER)
    assert figures(found["late_units"]) == [
        (OTHER, f"Đơn vị {OTHER}", 1, 24.0, 1, 0)
    ]  # Wed, Thu, Fri
    assert [item["key"] for item in found["late_fields"].items] == ["(chưa rõ lĩnh vực)"]
