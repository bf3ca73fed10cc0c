"""``GET /api/v1/kpis`` on PostgreSQL and SQLite, with figures worked out by hand.

The period is October 2024 (Vietnam time): [2024-10-01 00:00+07, 2024-11-01 00:00+07). The clock
is TEST_NOW (2024-11-06 10:00+07), after the period, so open dossiers are measured at the end of
the period, 2024-11-01 00:00+07.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.service import store_events
from shared.db import unit_of_work
from shared.events import DossierEvent, parse_envelope
from tests.conftest import ADMIN_KEY, DESK_KEY, OFFICER_KEY, TEST_NOW, bearer
from tests.factories import dossier_code
from tests.services.reconciler.kpis.conftest import (
    NEW,
    OLD,
    OTHER,
    PROVINCE,
    PROVINCE_OFFICER_KEY,
    desk_report,
    discrepancy,
    dossier,
    load,
    unit,
    vn,
)

OCTOBER = {"from": "2024-10-01", "to": "2024-10-31"}
TARGETS = {"on_time_pct": 98, "online_pct": 50, "digitised_pct": 80, "in_system_pct": 100}
NO_DISCREPANCIES = {
    "RETURNED_BUT_OPEN": 0,
    "TIME_MISMATCH": 0,
    "STATUS_CONFLICT": 0,
    "NOT_IN_SYSTEM": 0,
    "OVERDUE_NO_APOLOGY": 0,
    "DUE_SOON": 0,
    "DATES_REWRITTEN": 0,
    "STALLED": 0,
}
UNKNOWN = dossier_code(999)  # reported by the desk, never sent by the system


def settled(share: float | None) -> dict[str, Any]:
    """The forecast of a month that is over (October, asked in November): nothing undecided."""
    return {"on_time_pct_best": share, "on_time_pct_worst": share, "deciding": []}


D = {n: dossier_code(n) for n in range(1, 17)}
D[12] = dossier_code(12, unit=OLD)
D[15] = dossier_code(15, unit=OTHER)

# Unless said otherwise: KenhThucHien 1 (desk), HoSoCoThanhPhanSoHoa 1, unit NEW.
ENVELOPES = [
    # D1 finished (9) before its due date: end = NgayKetThucXuLy 07/10 15:00 ≤ due 08/10 → on time
    dossier(D[1], status=9, received=vn(10, 1), due=vn(10, 8), NgayKetThucXuLy="20241007150000"),
    # D2 returned (10) after its due date: end = first of 9 (10/10 09:00) and 10 (11/10 14:00)
    # = 10/10 09:00 > due 09/10 08:00 → late
    dossier(
        D[2],
        status=10,
        received=vn(10, 2),
        due=vn(10, 9),
        NgayKetThucXuLy="20241010090000",
        NgayTra="20241011140000",
    ),
    # D3 returned after its due date but finished before it: end = first of 9 (08/10 16:00)
    # and 10 (12/10 10:00) = 08/10 16:00 ≤ due 09/10 08:00 → on time
    dossier(
        D[3],
        status=10,
        received=vn(10, 2, 9),
        due=vn(10, 9),
        NgayKetThucXuLy="20241008160000",
        NgayTra="20241012100000",
    ),
    # D4 still processing (4) past its due date (the desk says it was returned on 09/10: the
    # system never caught up): end = period end 01/11 00:00 > due 10/10 08:00 → late
    dossier(D[4], status=4, received=vn(10, 3), due=vn(10, 10)),
    # D5 still processing, due after the period end: end = 01/11 00:00 ≤ due 04/11 08:00 → on time
    dossier(D[5], status=4, received=vn(10, 28), due=vn(11, 4)),
    # D6 refused (3): end = NgayTuChoi 04/10 10:00 ≤ due 11/10 → on time
    dossier(D[6], status=3, received=vn(10, 4), due=vn(10, 11), NgayTuChoi="20241004100000"),
    # D7 withdrawn (7): end = the snapshot's emitted_at 10/10 09:00 ≤ due 12/10 → on time
    # (measured at the period end it would be late)
    dossier(D[7], status=7, received=vn(10, 5), due=vn(10, 12), emitted=vn(10, 10, 9)),
    # D8 without a due date: counted in without_due_date, not in the on-time share
    dossier(D[8], status=4, received=vn(10, 6), due=None),
    # D9 online (KenhThucHien 2): end = 13/10 15:00 ≤ due 14/10 08:00 → on time
    dossier(
        D[9],
        status=10,
        received=vn(10, 7),
        due=vn(10, 14),
        KenhThucHien=2,
        NgayKetThucXuLy="20241013150000",
        NgayTra="20241014073000",
    ),
    # D10 not digitised (HoSoCoThanhPhanSoHoa 0): end = 14/10 16:00 ≤ due 15/10 → on time
    dossier(
        D[10],
        status=9,
        received=vn(10, 8),
        due=vn(10, 15),
        HoSoCoThanhPhanSoHoa=0,
        NgayKetThucXuLy="20241014160000",
    ),
    # D11 an apology moved the due date 16/10 → 25/10: end = 22/10 10:00 ≤ 25/10 → on time
    # (late against the original NgayHenTra)
    dossier(
        D[11],
        status=10,
        received=vn(10, 9),
        due=vn(10, 16),
        NgayKetThucXuLy="20241022100000",
        NgayTra="20241023090000",
        DanhSachXinLoi=[
            {
                "NgayYeuCau": "20241015160000",
                "NgayHenTraTruoc": "20241016080000",
                "NgayHenTraMoi": "20241025080000",
                "LyDo": "Chờ ý kiến phối hợp của cơ quan thuế",
            }
        ],
    ),
    # D12 of the merged old unit OLD (counted under NEW): end = 16/10 14:00 ≤ 17/10 → on time
    dossier(
        D[12],
        status=9,
        unit=OLD,
        received=vn(10, 10),
        due=vn(10, 17),
        NgayKetThucXuLy="20241016140000",
    ),
    # D13 received 30/09 23:59 (Vietnam time): outside the period, ignored
    dossier(D[13], status=4, received=vn(9, 30, 23, 59), due=vn(10, 7)),
    # D14 received 01/11 00:00 (Vietnam time; 31/10 17:00 UTC): outside the period, ignored
    dossier(D[14], status=4, received=vn(11, 1, 0), due=vn(11, 8), KenhThucHien=2),
    # D15 of OTHER, online, processing, due 20/11: end = 01/11 00:00 ≤ due → on time
    dossier(D[15], status=4, unit=OTHER, received=vn(10, 15), due=vn(11, 20), KenhThucHien=2),
    # D16 stopped (8): end = the snapshot's emitted_at 20/10 09:00 > due 18/10 08:00 → late
    dossier(D[16], status=8, received=vn(10, 11), due=vn(10, 18), emitted=vn(10, 20, 9)),
]

REPORTS = [
    # R1: the desk of NEW returned D4 (known to the system)
    desk_report("R1", D[4], occurred=vn(10, 9, 10), unit=NEW),
    # R2: the desk of OLD (answered for by NEW) returned a dossier the system never sent
    desk_report("R2", UNKNOWN, occurred=vn(10, 20, 15), unit=OLD),
    # R3: after the period (02/11): ignored
    desk_report("R3", dossier_code(998), occurred=vn(11, 2, 9), unit=NEW),
]

DISCREPANCIES = [
    discrepancy(D[4], "OVERDUE_NO_APOLOGY", status="open", unit=NEW),
    discrepancy(D[5], "OVERDUE_NO_APOLOGY", status="open", unit=NEW),
    discrepancy(D[4], "RETURNED_BUT_OPEN", status="acknowledged", unit=NEW),
    discrepancy(UNKNOWN, "NOT_IN_SYSTEM", status="open", unit=OLD),  # OLD → NEW
    discrepancy(D[1], "STALLED", status="resolved", unit=NEW),  # resolved: not counted
    discrepancy(D[15], "DUE_SOON", status="open", unit=OTHER),
]

UNITS = [
    unit(PROVINCE),
    unit(NEW, parent=PROVINCE),
    unit(OLD, parent=PROVINCE, replaced_by=NEW),
    unit(OTHER, parent=PROVINCE),
]

# NEW (with OLD's dossiers and reports): D1–D12 and D16.
NEW_ITEM = {
    "unit_code": NEW,
    # received in October: D1, D2, D3, D4, D5, D6, D7, D8, D9, D10, D11, D12, D16 = 13
    "received": 13,
    # on time: D1 D3 D5 D6 D7 D9 D10 D11 D12 = 9 of the 12 with a due date (13 − D8);
    # late: D2, D4, D16 → 9 ÷ 12 = 75.00 %
    "on_time_pct": 75.0,
    # online: D9 only → 1 ÷ 13 = 7.6923… → 7.69 %
    "online_pct": 7.69,
    # digitised: all but D10 → 12 ÷ 13 = 92.3076… → 92.31 %
    "digitised_pct": 92.31,
    # desk reports in October: R1 (D4, known) and R2 (unknown) → 1 ÷ 2 = 50.00 %
    "in_system_pct": 50.0,
    # D8
    "without_due_date": 1,
    # open/acknowledged now: OVERDUE_NO_APOLOGY D4 + D5 = 2, RETURNED_BUT_OPEN D4 (ack) = 1,
    # NOT_IN_SYSTEM (filed under OLD) = 1; STALLED D1 is resolved → 0
    "active_discrepancies": {
        **NO_DISCREPANCIES,
        "OVERDUE_NO_APOLOGY": 2,
        "RETURNED_BUT_OPEN": 1,
        "NOT_IN_SYSTEM": 1,
    },
    "forecast": settled(75.0),
}
OTHER_ITEM = {
    "unit_code": OTHER,
    "received": 1,  # D15
    "on_time_pct": 100.0,  # D15: 1 ÷ 1
    "online_pct": 100.0,  # D15 online: 1 ÷ 1
    "digitised_pct": 100.0,  # D15 digitised: 1 ÷ 1
    "in_system_pct": None,  # no desk report
    "without_due_date": 0,
    "active_discrepancies": {**NO_DISCREPANCIES, "DUE_SOON": 1},
    "forecast": settled(100.0),
}
PROVINCE_ITEM = {  # the province's own dossiers: none (no roll-up of its descendants)
    "unit_code": PROVINCE,
    "received": 0,
    "on_time_pct": None,
    "online_pct": None,
    "digitised_pct": None,
    "in_system_pct": None,
    "without_due_date": 0,
    "active_discrepancies": NO_DISCREPANCIES,
    "forecast": settled(None),
}


@pytest.fixture
async def october(engine: AsyncEngine) -> None:
    await load(
        engine,
        units=UNITS,
        envelopes=ENVELOPES,
        reports=REPORTS,
        discrepancies=DISCREPANCIES,
    )


async def kpis(client: httpx.AsyncClient, key: str, **params: str) -> httpx.Response:
    return await client.get("/api/v1/kpis", params=params, headers=bearer(key))


def items_by_unit(response: httpx.Response) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, response.text
    return {item["unit_code"]: item for item in response.json()["items"]}


@pytest.mark.usefixtures("october")
async def test_admin_sees_every_unit_with_hand_computed_figures(client: httpx.AsyncClient) -> None:
    response = await kpis(client, ADMIN_KEY, **OCTOBER)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "items": [PROVINCE_ITEM, NEW_ITEM, OTHER_ITEM],  # sorted by unit code
        "targets": TARGETS,
        "period": OCTOBER,
    }


@pytest.mark.usefixtures("october")
async def test_officer_sees_its_unit_with_the_merged_old_code(client: httpx.AsyncClient) -> None:
    assert items_by_unit(await kpis(client, OFFICER_KEY, **OCTOBER)) == {NEW: NEW_ITEM}
    assert items_by_unit(await kpis(client, OFFICER_KEY, unit=NEW, **OCTOBER)) == {NEW: NEW_ITEM}


@pytest.mark.usefixtures("october")
async def test_asking_for_the_old_code_answers_for_the_unit_that_took_it_over(
    client: httpx.AsyncClient,
) -> None:
    assert items_by_unit(await kpis(client, OFFICER_KEY, unit=OLD, **OCTOBER)) == {NEW: NEW_ITEM}
    assert items_by_unit(await kpis(client, ADMIN_KEY, unit=OLD, **OCTOBER)) == {NEW: NEW_ITEM}


@pytest.mark.usefixtures("october")
async def test_a_parent_unit_covers_its_descendants(client: httpx.AsyncClient) -> None:
    expected = {PROVINCE: PROVINCE_ITEM, NEW: NEW_ITEM, OTHER: OTHER_ITEM}
    assert items_by_unit(await kpis(client, PROVINCE_OFFICER_KEY, **OCTOBER)) == expected
    assert items_by_unit(await kpis(client, ADMIN_KEY, unit=PROVINCE, **OCTOBER)) == expected
    only_other = await kpis(client, PROVINCE_OFFICER_KEY, unit=OTHER, **OCTOBER)
    assert items_by_unit(only_other) == {OTHER: OTHER_ITEM}


@pytest.mark.usefixtures("october")
async def test_nothing_received_gives_null_percentages(client: httpx.AsyncClient) -> None:
    response = await kpis(
        client, ADMIN_KEY, unit=OTHER, **{"from": "2024-09-01", "to": "2024-09-30"}
    )
    assert items_by_unit(response) == {
        OTHER: {
            "unit_code": OTHER,
            "received": 0,
            "on_time_pct": None,
            "online_pct": None,
            "digitised_pct": None,
            "in_system_pct": None,
            "without_due_date": 0,
            # discrepancies are those unresolved now, whatever the period
            "active_discrepancies": {**NO_DISCREPANCIES, "DUE_SOON": 1},
            "forecast": settled(None),
        }
    }


async def test_an_empty_database_answers_the_asked_unit_with_nulls(
    client: httpx.AsyncClient,
) -> None:
    response = await kpis(client, OFFICER_KEY, **OCTOBER)
    assert response.json()["items"] == [{**PROVINCE_ITEM, "unit_code": NEW}]


@pytest.mark.usefixtures("october")
async def test_a_unit_outside_the_key_is_forbidden(client: httpx.AsyncClient) -> None:
    for asked in (OTHER, PROVINCE, "000.00.77.H08"):
        response = await kpis(client, OFFICER_KEY, unit=asked, **OCTOBER)
        assert response.status_code == 403, asked
        assert "không có quyền" in response.json()["detail"]


async def test_only_officers_and_admins_may_read_kpis(client: httpx.AsyncClient) -> None:
    assert (await kpis(client, DESK_KEY, **OCTOBER)).status_code == 403
    assert (await client.get("/api/v1/kpis", params=OCTOBER)).status_code == 401


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"from": "2024-11-01", "to": "2024-10-31"}, "after 'to'"),
        ({"from": "2024-01-01", "to": "2025-01-01"}, "367 days"),
        ({"from": "2024-10-1", "to": "2024-10-31"}, "YYYY-MM-DD"),
        ({"from": "01/10/2024", "to": "2024-10-31"}, "YYYY-MM-DD"),
        ({"from": "2024-02-30", "to": "2024-03-31"}, "YYYY-MM-DD"),
    ],
)
async def test_a_bad_period_is_refused(
    client: httpx.AsyncClient, params: dict[str, str], fragment: str
) -> None:
    response = await kpis(client, ADMIN_KEY, **params)
    assert response.status_code == 422
    assert fragment in response.json()["detail"]


async def test_a_whole_leap_year_is_accepted(client: httpx.AsyncClient) -> None:
    # 2024-01-01 … 2024-12-31 = 366 days, the longest period allowed
    response = await kpis(client, ADMIN_KEY, **{"from": "2024-01-01", "to": "2024-12-31"})
    assert response.status_code == 200, response.text


async def test_the_period_defaults_to_this_month_so_far(client: httpx.AsyncClient) -> None:
    # TEST_NOW = 2024-11-06 10:00+07
    response = await kpis(client, ADMIN_KEY)
    assert response.json()["period"] == {"from": "2024-11-01", "to": "2024-11-06"}
    response = await kpis(client, ADMIN_KEY, unit="", **{"from": "", "to": ""})
    assert response.json()["period"] == {"from": "2024-11-01", "to": "2024-11-06"}


@pytest.mark.parametrize("resync_first", [False, True], ids=["in-order", "resync-arrives-first"])
async def test_a_withdrawn_dossier_resynced_later_keeps_the_end_it_first_showed(
    client: httpx.AsyncClient, engine: AsyncEngine, resync_first: bool
) -> None:
    """End of 7 (and 8) = the first snapshot that showed it: a later re-sync is not late."""
    code = dossier_code(1)
    first = dossier(code, status=7, received=vn(10, 5), due=vn(10, 12), emitted=vn(10, 10, 9))
    resync = {
        **dossier(code, status=7, received=vn(10, 5), due=vn(10, 12), emitted=vn(10, 30, 9)),
        "event_id": f"resync-{code}",
    }
    await load(engine, units=UNITS)
    for envelope in [resync, first] if resync_first else [first, resync]:
        event = parse_envelope(envelope)
        assert isinstance(event, DossierEvent)
        async with unit_of_work(engine, "test") as connection:
            await store_events(connection, [event], now=TEST_NOW)  # an older one: stale

    items = items_by_unit(await kpis(client, ADMIN_KEY, **OCTOBER))
    assert items[NEW]["received"] == 1
    assert items[NEW]["on_time_pct"] == 100.0  # ended 10/10 09:00 ≤ due 12/10, not 30/10
