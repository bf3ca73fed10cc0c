"""``GET /api/v1/lateness`` (contract §7) on PostgreSQL and SQLite, with hours worked by hand.

Office hours 07:00–11:30 and 13:30–17:00 (8 h a day), Monday to Friday; October and November
2024 hold no Vietnamese public holiday. The period is October 2024; the clock is TEST_NOW,
Wednesday 06/11/2024 10:00, at which an open dossier is measured. Steps are (officer, start,
allowance's end); a step runs until the next one starts, the last one until the dossier's end.

- L1 (NEW, Đất đai, 1.004227), due Fri 04/10 17:00, ended Mon 07/10 09:00. an Tue 01/10 08:00,
  allowed until Wed 02/10 11:00: 5 h (Wed 11:00–11:30, 13:30–17:00, Thu 07:00–08:00); binh
  Thu 03/10 08:00, allowed until Fri 04/10 15:00: 4 h (Fri 15–17, Mon 07–09: the weekend is
  nobody's). 9 h.
- L2 (NEW, Đất đai, 1.004227), due Wed 09/10 10:00, ended Thu 10/10 09:00. an Mon 07/10 08:00,
  chi Wed 09/10 14:00, no allowance: the whole lateness, 7 h (Wed 10:00–11:30, 13:30–17:00,
  Thu 07–09), goes to an, who held it at the due date.
- L3 (NEW, Hộ tịch, 1.001193), promised Mon 14/10 17:00, apology made Tue 15/10 09:00 (after:
  late) moving it to Wed 16/10 17:00; ended Thu 17/10 11:00. chi Mon 14/10 07:30, allowed
  until 08:00, handed on at 08:00: 0 h; dung Mon 14/10 08:00, allowed until Wed 16/10 15:00:
  6 h (Wed 15–17, Thu 07–11).
- L4 (NEW, Hộ tịch, 1.001193), promised Fri 18/10 17:00, apology made Thu 17/10 (in time)
  moving it to Tue 22/10 08:00; ended Tue 22/10 15:00. dung Wed 16/10 08:00, allowed until Fri
  18/10 11:00: 1 h (11:00–11:30, 13:30–14:00); dung waits on the applicant (5) from Fri 18/10
  14:00: 0 h; em Tue 22/10 09:00, allowed until 10:00: 3 h (10:00–11:30, 13:30–15:00). 4 h.
- L5 (OLD, taken over by NEW; Đất đai, 1.003003), due Thu 31/10 17:00, open, no step: 27 h
  (Fri 01/11, Mon 04/11, Tue 05/11 8 h each, Wed 06/11 07–10), to nobody.
- L6 (OTHER, Đất đai, 1.004227), due Tue 08/10 17:00, ended Wed 09/10 11:00. gia Mon 07/10
  08:00, allowed until 17:00: 12 h (Tue 8 h, Wed 07–11).
- T1 (NEW) due Fri 11/10 17:00, ended 16:00 (though an overran his step's allowance) and T2
  (NEW) open, due 20/11: on time, not counted.
- X1, X2 (NEW) open past their due dates, but received 30/09 23:59 and 01/11 00:00: outside
  October.

Without an apology: L1, L2, L5 (and L6); a late apology: L3.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reconciler.lateness.formulas import NO_OFFICER
from shared.db import unit_of_work
from shared.dvcqg import format_thoi_diem
from shared.models import Officer
from tests.conftest import ADMIN_KEY, DESK_KEY, OFFICER_KEY, TEST_NOW, bearer
from tests.factories import dossier_code, progress
from tests.services.reconciler.kpis.conftest import NEW, OLD, OTHER, PROVINCE, dossier, load, vn
from tests.services.reconciler.kpis.conftest import unit as unit_row

OCTOBER = {"from": "2024-10-01", "to": "2024-10-31"}
LAND, CIVIL = "Đất đai", "Hộ tịch"
TRANSFER: dict[str, Any] = {"MaTTHC": "1.004227", "TenTTHC": "Đăng ký biến động quyền sử dụng đất"}
FIRST_REGISTRATION: dict[str, Any] = {"MaTTHC": "1.003003", "TenTTHC": "Đăng ký đất đai lần đầu"}
BIRTH: dict[str, Any] = {"MaTTHC": "1.001193", "TenTTHC": "Đăng ký khai sinh"}
AN, BINH, CHI, DUNG, EM, GIA = (
    "an.vpdk",
    "binh.vpdk",
    "chi.vpdk",
    "dung.hotich",
    "em.hotich",
    "gia.khac",
)
NAMES = {AN: "Nguyễn Văn An", BINH: "Trần Thị Bình", DUNG: "Lê Văn Dũng"}  # em: not in it
L = {n: dossier_code(n) for n in (1, 2, 3, 4)}
L[5] = dossier_code(5, unit=OLD)
L[6] = dossier_code(6, unit=OTHER)
T1, T2, X1, X2 = (dossier_code(n) for n in (11, 12, 13, 14))
UNITS = [
    unit_row(PROVINCE),
    unit_row(NEW, parent=PROVINCE),
    unit_row(OLD, parent=PROVINCE, replaced_by=NEW),
    unit_row(OTHER, parent=PROVINCE),
]


def step(
    code: str,
    number: int,
    officer: str,
    start: datetime,
    allowed: datetime | None = None,
    *,
    status: int = 4,
) -> dict[str, Any]:
    """A progress step starting at ``start`` (NgayBatDau), allowed until ``allowed``."""
    envelope = progress(
        code,
        event_id=f"step-{code}-{number}",
        emitted_at=start + timedelta(minutes=5),
        step_at=start,
        officer=officer,
        status=status,
    )
    envelope["data"]["NgayBatDau"] = format_thoi_diem(start)
    if allowed is not None:
        envelope["data"]["NgayKetThucTheoQuyDinh"] = format_thoi_diem(allowed)
    return envelope


def apology(requested: datetime, before: datetime, new: datetime) -> list[dict[str, str]]:
    return [
        {
            "NgayYeuCau": format_thoi_diem(requested),
            "NgayHenTraTruoc": format_thoi_diem(before),
            "NgayHenTraMoi": format_thoi_diem(new),
            "LyDo": "Chờ ý kiến của cơ quan phối hợp",
        }
    ]


def finished(at: datetime) -> dict[str, Any]:
    return {"NgayKetThucXuLy": format_thoi_diem(at)}


DOSSIERS: dict[str, list[dict[str, Any]]] = {
    L[1]: [
        dossier(
            L[1], status=9, received=vn(10, 1, 7, 30), due=vn(10, 4, 17),
            TenLinhVuc=LAND, **TRANSFER, **finished(vn(10, 7, 9)),
        ),
        step(L[1], 1, AN, vn(10, 1, 8), vn(10, 2, 11)),
        step(L[1], 2, BINH, vn(10, 3, 8), vn(10, 4, 15)),
    ],
    L[2]: [
        dossier(
            L[2], status=9, received=vn(10, 7, 7, 30), due=vn(10, 9, 10),
            TenLinhVuc=LAND, **TRANSFER, **finished(vn(10, 10, 9)),
        ),
        step(L[2], 1, AN, vn(10, 7, 8)),
        step(L[2], 2, CHI, vn(10, 9, 14)),
    ],
    L[3]: [
        dossier(
            L[3], status=9, received=vn(10, 14, 7, 30), due=vn(10, 14, 17),
            TenLinhVuc=CIVIL, **BIRTH, **finished(vn(10, 17, 11)),
            DanhSachXinLoi=apology(vn(10, 15, 9), vn(10, 14, 17), vn(10, 16, 17)),
        ),
        step(L[3], 0, CHI, vn(10, 14, 7, 30), vn(10, 14, 8)),
        step(L[3], 1, DUNG, vn(10, 14, 8), vn(10, 16, 15)),
    ],
    L[4]: [
        dossier(
            L[4], status=9, received=vn(10, 16, 7, 30), due=vn(10, 18, 17),
            TenLinhVuc=CIVIL, **BIRTH, **finished(vn(10, 22, 15)),
            DanhSachXinLoi=apology(vn(10, 17, 10), vn(10, 18, 17), vn(10, 22, 8)),
        ),
        step(L[4], 1, DUNG, vn(10, 16, 8), vn(10, 18, 11)),
        step(L[4], 2, DUNG, vn(10, 18, 14), status=5),
        step(L[4], 3, EM, vn(10, 22, 9), vn(10, 22, 10)),
    ],
    L[5]: [
        dossier(
            L[5], status=4, unit=OLD, received=vn(10, 25), due=vn(10, 31, 17),
            TenLinhVuc=LAND, **FIRST_REGISTRATION,
        ),
    ],
    L[6]: [
        dossier(
            L[6], status=9, unit=OTHER, received=vn(10, 7, 7, 30), due=vn(10, 8, 17),
            TenLinhVuc=LAND, **TRANSFER, **finished(vn(10, 9, 11)),
        ),
        step(L[6], 1, GIA, vn(10, 7, 8), vn(10, 7, 17)),
    ],
    T1: [
        dossier(
            T1, status=9, received=vn(10, 10, 7, 30), due=vn(10, 11, 17),
            TenLinhVuc=LAND, **finished(vn(10, 11, 16)),
        ),
        step(T1, 1, AN, vn(10, 10, 8), vn(10, 10, 9)),
    ],
    T2: [dossier(T2, status=4, received=vn(10, 28), due=vn(11, 20, 17), TenLinhVuc=LAND)],
    X1: [dossier(X1, status=4, received=vn(9, 30, 23, 59), due=vn(10, 1, 17), TenLinhVuc=LAND)],
    X2: [dossier(X2, status=4, received=vn(11, 1, 0), due=vn(11, 4), TenLinhVuc=LAND)],
}  # fmt: skip


async def load_dossiers(engine: AsyncEngine, *codes: str) -> None:
    """The directory (units and the officers' names) and the named dossiers with their steps."""
    await load(engine, units=UNITS, envelopes=[e for code in codes for e in DOSSIERS[code]])
    async with unit_of_work(engine, "test_officers") as connection:
        await connection.execute(
            insert(Officer),
            [
                {"account": a, "full_name": n, "unit_code": NEW, "role": "handler"}
                | {"updated_at": TEST_NOW}
                for a, n in NAMES.items()
            ],
        )


@pytest.fixture
async def october(engine: AsyncEngine) -> None:
    await load_dossiers(engine, *DOSSIERS)


def line(
    key: str, label: str, late: int, hours: float, without: int, late_apology: int
) -> dict[str, Any]:
    return {
        "key": key,
        "label": label,
        "late_dossiers": late,
        "overrun_working_hours": hours,
        "without_apology": without,
        "late_apology": late_apology,
    }


NEW_LINE = line(NEW, f"Đơn vị {NEW}", 5, 53.0, 3, 1)  # L1–L5: 9 + 7 + 6 + 4 + 27 hours
OTHER_LINE = line(OTHER, f"Đơn vị {OTHER}", 1, 12.0, 1, 0)  # L6


async def lateness(client: httpx.AsyncClient, key: str, **params: str) -> httpx.Response:
    return await client.get("/api/v1/lateness", params=params, headers=bearer(key))


async def report(client: httpx.AsyncClient, key: str, **params: str) -> dict[str, Any]:
    response = await lateness(client, key, **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.usefixtures("october")
async def test_by_unit_counts_the_keys_late_dossiers_with_their_overrun(
    client: httpx.AsyncClient,
) -> None:
    # L5 belongs to OLD, which NEW took over; L6 (OTHER) is outside the key
    assert await report(client, OFFICER_KEY, **OCTOBER) == {
        "items": [NEW_LINE],
        "total": 5,
        "period": OCTOBER,
    }


@pytest.mark.usefixtures("october")
async def test_by_officer_charges_each_overrun_to_the_officer_whose_step_overran(
    client: httpx.AsyncClient,
) -> None:
    answer = await report(client, OFFICER_KEY, group_by="officer", **OCTOBER)
    assert answer["items"] == [
        line(NO_OFFICER, NO_OFFICER, 1, 27.0, 1, 0),  # L5: no step held it
        line(AN, "Nguyễn Văn An", 2, 12.0, 2, 0),  # L1 5 h + L2 7 h (held it when due)
        line(DUNG, "Lê Văn Dũng", 2, 7.0, 0, 1),  # L3 6 h + L4 1 h
        line(BINH, "Trần Thị Bình", 1, 4.0, 1, 0),  # L1
        line(EM, EM, 1, 3.0, 0, 0),  # L4; not in the directory: the account
    ]
    assert answer["total"] == 5  # L1 and L4 count for two officers each, once in the total


async def test_without_allowances_the_holder_at_the_due_date_answers_for_the_lateness(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await load_dossiers(engine, L[2])
    answer = await report(client, OFFICER_KEY, group_by="officer", **OCTOBER)
    # chi held L2 when it ended, but an held it at its due date
    assert answer["items"] == [line(AN, "Nguyễn Văn An", 1, 7.0, 1, 0)]


async def test_a_late_dossier_whose_allowances_were_all_kept_counts_for_its_holder_when_due(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    code = dossier_code(7)
    await load_dossiers(engine)
    await load(
        engine,
        envelopes=[
            dossier(
                code, status=9, received=vn(10, 1, 7, 30), due=vn(10, 2, 17),
                **finished(vn(10, 3, 10)),
            ),
            step(code, 1, AN, vn(10, 1, 8), vn(10, 2, 17)),  # handed on in time, Wed 09:00
            step(code, 2, BINH, vn(10, 2, 9)),  # no allowance; held it at the due date
        ],
    )  # fmt: skip
    answer = await report(client, OFFICER_KEY, group_by="officer", **OCTOBER)
    # late by 3 h (Thu 07–10), but no allowance was overrun: nobody's overrun, binh's dossier
    assert answer["items"] == [line(BINH, "Trần Thị Bình", 1, 0.0, 1, 0)]


@pytest.mark.usefixtures("october")
async def test_by_field_groups_by_ten_linh_vuc(client: httpx.AsyncClient) -> None:
    answer = await report(client, OFFICER_KEY, group_by="field", **OCTOBER)
    assert answer["items"] == [
        line(LAND, LAND, 3, 43.0, 3, 0),  # L1 9 h, L2 7 h, L5 27 h
        line(CIVIL, CIVIL, 2, 10.0, 0, 1),  # L3 6 h, L4 4 h
    ]


@pytest.mark.usefixtures("october")
async def test_by_procedure_keys_the_code_and_shows_the_name(client: httpx.AsyncClient) -> None:
    answer = await report(client, OFFICER_KEY, group_by="procedure", **OCTOBER)
    assert answer["items"] == [
        line("1.003003", "Đăng ký đất đai lần đầu", 1, 27.0, 1, 0),  # L5
        line("1.004227", "Đăng ký biến động quyền sử dụng đất", 2, 16.0, 2, 0),  # L1, L2
        line("1.001193", "Đăng ký khai sinh", 2, 10.0, 0, 1),  # L3, L4
    ]


@pytest.mark.usefixtures("october")
@pytest.mark.parametrize("group_by", ["unit", "officer", "field", "procedure"])
async def test_groups_come_most_overrun_first(client: httpx.AsyncClient, group_by: str) -> None:
    answer = await report(client, ADMIN_KEY, group_by=group_by, **OCTOBER)
    hours = [item["overrun_working_hours"] for item in answer["items"]]
    assert len(hours) > 1 and hours == sorted(hours, reverse=True)


@pytest.mark.parametrize(
    ("code", "without", "late"),
    [(L[1], 1, 0), (L[3], 0, 1), (L[4], 0, 0)],
    ids=["no-apology", "apology-after-the-due-date", "apology-in-time"],
)
async def test_missing_and_late_apologies_are_counted(
    client: httpx.AsyncClient, engine: AsyncEngine, code: str, without: int, late: int
) -> None:
    await load_dossiers(engine, code)
    [item] = (await report(client, OFFICER_KEY, **OCTOBER))["items"]
    assert (item["late_dossiers"], item["without_apology"], item["late_apology"]) == (
        1,
        without,
        late,
    )


async def test_a_dossier_on_time_is_not_counted_even_when_a_step_overran(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await load_dossiers(engine, T1, T2)
    for group_by in ("unit", "officer"):
        answer = await report(client, OFFICER_KEY, group_by=group_by, **OCTOBER)
        assert (answer["items"], answer["total"]) == ([], 0)


async def test_a_dossier_received_outside_the_period_is_not_counted(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await load_dossiers(engine, X1, X2)
    assert (await report(client, OFFICER_KEY, **OCTOBER))["total"] == 0
    # the same dossiers count in the periods they were received in, open and measured now:
    # X1 from Tue 01/10 17:00, 25 working days (02/10–05/11) and Wed 07–10 = 203 h;
    # X2 from Mon 04/11 08:00: 3.5 + 3.5 h, Tue 8 h, Wed 07–10 3 h = 18 h
    for day, hours in (("2024-09-30", 203.0), ("2024-11-01", 18.0)):
        answer = await report(client, OFFICER_KEY, **{"from": day, "to": day})
        assert answer["items"] == [line(NEW, f"Đơn vị {NEW}", 1, hours, 1, 0)]


@pytest.mark.usefixtures("october")
async def test_admin_sees_every_unit(client: httpx.AsyncClient) -> None:
    answer = await report(client, ADMIN_KEY, **OCTOBER)
    assert (answer["items"], answer["total"]) == ([NEW_LINE, OTHER_LINE], 6)
    only_other = await report(client, ADMIN_KEY, unit=OTHER, **OCTOBER)
    assert (only_other["items"], only_other["total"]) == ([OTHER_LINE], 1)


@pytest.mark.usefixtures("october")
async def test_asking_for_the_old_code_answers_for_the_unit_that_took_it_over(
    client: httpx.AsyncClient,
) -> None:
    assert (await report(client, OFFICER_KEY, unit=OLD, **OCTOBER))["items"] == [NEW_LINE]


@pytest.mark.usefixtures("october")
async def test_a_unit_outside_the_key_is_forbidden(client: httpx.AsyncClient) -> None:
    for asked in (OTHER, PROVINCE, "000.00.77.H08"):
        response = await lateness(client, OFFICER_KEY, unit=asked, **OCTOBER)
        assert response.status_code == 403, asked
        assert "không có quyền" in response.json()["detail"]


async def test_only_officers_and_admins_may_read_lateness(client: httpx.AsyncClient) -> None:
    assert (await lateness(client, DESK_KEY, **OCTOBER)).status_code == 403
    assert (await client.get("/api/v1/lateness", params=OCTOBER)).status_code == 401


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"group_by": "officers"}, "'group_by' must be one of unit, officer, field, procedure"),
        ({"group_by": "Unit"}, "nhận được 'Unit'"),
        ({"from": "2024-11-01", "to": "2024-10-31"}, "after 'to'"),
        ({"from": "2024-01-01", "to": "2025-01-01"}, "367 days"),
        ({"from": "2024-10-1"}, "YYYY-MM-DD"),
        ({"to": "31/10/2024"}, "YYYY-MM-DD"),
        ({"to": "0001-01-01"}, "1900–2999"),
    ],
)
async def test_a_bad_grouping_or_period_is_refused(
    client: httpx.AsyncClient, params: dict[str, str], fragment: str
) -> None:
    response = await lateness(client, ADMIN_KEY, **params)
    assert response.status_code == 422
    assert fragment in response.json()["detail"]


@pytest.mark.usefixtures("october")
async def test_by_default_this_month_so_far_by_unit(client: httpx.AsyncClient) -> None:
    # TEST_NOW = 06/11/2024: November so far holds X2 (received 01/11, open past 04/11)
    for params in ({}, {"group_by": "", "from": "", "to": ""}):
        answer = await report(client, OFFICER_KEY, **params)
        assert answer["period"] == {"from": "2024-11-01", "to": "2024-11-06"}
        assert [item["key"] for item in answer["items"]] == [NEW]
