"""The weekly digest from real data: who the late dossiers' time went to, the rewritten dossiers
and the month's forecast, planned and then received by a real SMTP server (PostgreSQL, SQLite).

The digest goes out Monday 30/11/2026 07:30 (Vietnam time) to the province's leader, whose
scope holds the land office (LAND) and a commune (COMMUNE); OUTSIDE is another province's.
Office hours 07:00–11:30 and 13:30–17:00; Tuesday 24/11 is a public holiday (Ngày Văn hóa Việt
Nam, from 2026). Late dossiers received 23/11–29/11, measured at the week's end (30/11 00:00):

- D1 (LAND, Đất đai), due 24/11 17:00, finished 26/11 17:00. B holds it from 23/11 08:00 with
  an allowance until 25/11 10:00 and hands it to C at 25/11 15:00: B overran 10:00–11:30 and
  13:30–15:00 = 3 h (the lunch break is nobody's). C's allowance ends 25/11 17:00, C finishes
  26/11 17:00: 8 h. 11 h, no apology.
- D2 (COMMUNE, Hộ tịch), due 25/11 17:00; an apology made 26/11 08:00 (after that due date:
  late) moves it to 26/11 17:00; finished 27/11 09:00. No step has an allowance: the whole
  lateness, 27/11 07:00–09:00 = 2 h, goes to E, who held it at the due date.
- D3 (LAND), due 27/11 17:00, finished 26/11 10:00: on time.
- D4 (LAND, Đất đai), due 26/11 17:00, still open. B's allowance ends 26/11 17:00: Friday 27/11
  = 8 h up to the week's end. No apology.
- D5 (OUTSIDE), late: not the leader's.

So units: LAND 2 late, 19 h, 2 without apology; COMMUNE 1 late, 2 h, 1 late apology. Officers:
B 11 h (D1, D4), C 8 h, E 2 h. Fields: Đất đai 2 late, 19 h; Hộ tịch 1, 2 h.

The month (01/11–30/11, as of the digest's moment; the month ends 01/12 00:00): LAND has D1 and
D4 late, D3 on time, F1 (due 30/11 10:00, held by C) and F2 (30/11 16:00, B) open: 3/5 = 60 %
at best, 1/5 = 20 % at worst — under 98 % whatever happens. COMMUNE has D2 late, 60 dossiers on
time, F3 (30/11 10:00, E) and F4 (30/11 16:00, nobody) open: 62/63 = 98,41 % at best, 60/63 =
95,24 % at worst, and F3 alone late gives 61/63 = 96,83 %: F3 decides.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from services.alerts.config import AlertsSettings
from services.alerts.digest import digest_content
from services.alerts.planner import AlertPlanner
from services.alerts.worker import AlertsWorker
from services.ingest.service import store_events
from shared.clock import VN_TZ
from shared.db import unit_of_work
from shared.directory import load_directory
from shared.dvcqg import format_thoi_diem
from shared.events import DossierEvent, parse_envelope
from shared.models import Discrepancy, Officer, Unit
from tests.factories import progress, snapshot
from tests.fakes.smtp_server import FakeSmtpServer
from tests.services.alerts.dispatch.conftest import MutableClock

PROVINCE, LAND, COMMUNE, OUTSIDE = (
    "000.00.00.H08",
    "000.00.12.H08",
    "000.00.13.H08",
    "000.00.99.H09",
)
LAND_NAME, COMMUNE_NAME = "Chi nhánh VPĐKĐĐ Tuy Phong", "UBND xã Hòa Bình"
B, C, E = "tranthib.vpdkdd", "levanc.vpdkdd", "phamthie.xa"
LEADER = "lanhdao.tinh"


def vn(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=VN_TZ)


NOW = vn(30, 7, 30)  # Monday: the digest's moment
D1, D2, D3, D4 = (f"{LAND}-261123-0001", f"{COMMUNE}-261124-0002", f"{LAND}-261123-0003",
                  f"{LAND}-261125-0004")  # fmt: skip
D5 = f"{OUTSIDE}-261123-0005"
F1, F2, F3, F4 = (f"{LAND}-261127-0011", f"{LAND}-261127-0012", f"{COMMUNE}-261127-0013",
                  f"{COMMUNE}-261127-0014")  # fmt: skip


def dossier(
    code: str,
    unit: str,
    *,
    received: datetime,
    due: datetime,
    field: str = "Đất đai",
    finished: datetime | None = None,
    **data: Any,
) -> dict[str, Any]:
    """A snapshot: finished (status 9 with ``NgayKetThucXuLy``) or open (4)."""
    fields: dict[str, Any] = {
        "NgayTiepNhan": format_thoi_diem(received),
        "NgayHenTra": format_thoi_diem(due),
        "TenLinhVuc": field,
        **data,
    }
    if finished is not None:
        fields["NgayKetThucXuLy"] = format_thoi_diem(finished)
    return snapshot(
        code,
        event_id=f"snap-{code}",
        emitted_at=vn(29, 20),
        status=4 if finished is None else 9,
        unit=unit,
        **fields,
    )


def step(code: str, officer: str, start: datetime, allowed: datetime | None) -> dict[str, Any]:
    envelope = progress(
        code,
        event_id=f"step-{code}-{officer}",
        emitted_at=start,
        step_at=start,
        officer=officer,
    )
    envelope["data"]["NgayBatDau"] = format_thoi_diem(start)
    if allowed is not None:
        envelope["data"]["NgayKetThucTheoQuyDinh"] = format_thoi_diem(allowed)
    return envelope


def envelopes() -> list[dict[str, Any]]:
    apology = {
        "NgayYeuCau": format_thoi_diem(vn(26, 8)),
        "NgayHenTraMoi": format_thoi_diem(vn(26, 17)),
    }
    on_time = [
        dossier(f"{COMMUNE}-261102-{n:04d}", COMMUNE, received=vn(2 + n % 15, 8), due=vn(20, 17),
                field="Hộ tịch", finished=vn(19, 15))
        for n in range(100, 160)
    ]  # fmt: skip
    return [
        dossier(D1, LAND, received=vn(23, 8), due=vn(24, 17), finished=vn(26, 17)),
        step(D1, B, vn(23, 8), vn(25, 10)),
        step(D1, C, vn(25, 15), vn(25, 17)),
        dossier(D2, COMMUNE, received=vn(24, 8), due=vn(25, 17), field="Hộ tịch",
                finished=vn(27, 9), DanhSachXinLoi=[apology]),
        step(D2, E, vn(24, 8), None),
        dossier(D3, LAND, received=vn(23, 9), due=vn(27, 17), finished=vn(26, 10)),
        dossier(D4, LAND, received=vn(25, 8), due=vn(26, 17)),
        step(D4, B, vn(25, 8), vn(26, 17)),
        dossier(D5, OUTSIDE, received=vn(23, 8), due=vn(24, 17), finished=vn(26, 17)),
        dossier(F1, LAND, received=vn(27, 8), due=vn(30, 10)),
        step(F1, C, vn(27, 8), None),
        dossier(F2, LAND, received=vn(27, 8), due=vn(30, 16)),
        step(F2, B, vn(27, 8), None),
        dossier(F3, COMMUNE, received=vn(27, 8), due=vn(30, 10), field="Hộ tịch"),
        step(F3, E, vn(27, 8), None),
        dossier(F4, COMMUNE, received=vn(27, 8), due=vn(30, 16), field="Hộ tịch"),
        *on_time,
    ]  # fmt: skip


def rewritten(code: str, unit: str, *, status: str = "open") -> dict[str, Any]:
    """A DATES_REWRITTEN as the reconciler opens it: the due date pushed back a week."""
    return {
        "dossier_code": code,
        "kind": "DATES_REWRITTEN",
        "severity": "critical",
        "status": status,
        "unit_code": unit,
        "responsible": B,
        "reporter": None,
        "since": vn(27, 9),
        "opened_at": vn(27, 9),
        "resolved_at": vn(28, 9) if status == "resolved" else None,
        "details": {
            "field": "NgayHenTra",
            "before": "2026-11-26T17:00:00+07:00",
            "before_seen_at": "2026-11-25T08:00:00+07:00",
            "after": "2026-12-03T17:00:00+07:00",
            "after_seen_at": "2026-11-27T09:00:00+07:00",
            "system_status": 4,
        },
        "updated_at": vn(27, 9),
    }


def unit(code: str, name: str, parent: str | None = None) -> dict[str, Any]:
    return {"code": code, "name": name, "parent_code": parent, "replaced_by": None,
            "updated_at": vn(1, 8)}  # fmt: skip


def officer(account: str, name: str, unit_code: str, role: str = "handler") -> dict[str, Any]:
    return {
        "account": account,
        "full_name": name,
        "unit_code": unit_code,
        "role": role,
        "email": f"{account}@tinh.gov.vn",
        "zalo_user_id": None,
        "phone": None,
        "active": True,
        "updated_at": vn(1, 8),
    }


@pytest.fixture
async def province(engine: AsyncEngine) -> None:
    events = [parse_envelope(envelope) for envelope in envelopes()]
    async with unit_of_work(engine, "test") as connection:
        await connection.execute(
            insert(Unit),
            [
                unit(PROVINCE, "UBND tỉnh Bình Thuận"),
                unit(LAND, LAND_NAME, PROVINCE),
                unit(COMMUNE, COMMUNE_NAME, PROVINCE),
                unit(OUTSIDE, "UBND tỉnh khác"),
            ],
        )
        await connection.execute(
            insert(Officer),
            [
                officer(LEADER, "Nguyễn Văn Lãnh", PROVINCE, "leader"),
                officer(B, "Trần Thị B", LAND),
                officer(C, "Lê Văn C", LAND),
                officer(E, "Phạm Thị E", COMMUNE),
            ],
        )
        result = await store_events(
            connection, [e for e in events if isinstance(e, DossierEvent)], now=NOW
        )
        assert result.count("stored") == len(events), result.outcomes
        await connection.execute(
            insert(Discrepancy),
            [
                rewritten(D4, LAND),
                rewritten(D1, LAND, status="resolved"),
                rewritten(D5, OUTSIDE),
            ],
        )


async def content(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as connection:
        directory = await load_directory(connection)
        return await digest_content(connection, unit=PROVINCE, directory=directory, now=NOW)


def late(key: str, label: str, count: int, hours: float, without: int, late: int) -> Any:
    return {
        "key": key,
        "label": label,
        "late_dossiers": count,
        "overrun_working_hours": hours,
        "without_apology": without,
        "late_apology": late,
    }


@pytest.mark.usefixtures("province")
async def test_the_digest_charges_each_unit_officer_and_field_its_overrun(
    engine: AsyncEngine,
) -> None:
    found = (await content(engine))["lateness"]
    assert found["period"] == {"from": "2026-11-23", "to": "2026-11-29"}
    assert (found["total"], found["overrun_working_hours"]) == (3, 21.0)
    assert (found["without_apology"], found["late_apology"]) == (2, 1)
    assert found["units"] == {
        "count": 2,
        "items": [
            late(LAND, LAND_NAME, 2, 19.0, 2, 0),
            late(COMMUNE, COMMUNE_NAME, 1, 2.0, 0, 1),
        ],
    }
    assert found["officers"] == {
        "count": 3,
        "items": [
            late(B, "Trần Thị B", 2, 11.0, 2, 0),
            late(C, "Lê Văn C", 1, 8.0, 1, 0),
            late(E, "Phạm Thị E", 1, 2.0, 0, 1),
        ],
    }
    assert found["fields"] == {
        "count": 2,
        "items": [
            late("Đất đai", "Đất đai", 2, 19.0, 2, 0),
            late("Hộ tịch", "Hộ tịch", 1, 2.0, 0, 1),
        ],
    }


@pytest.mark.usefixtures("province")
async def test_the_digest_lists_the_open_rewrites_of_the_leaders_units_only(
    engine: AsyncEngine,
) -> None:
    found = await content(engine)
    assert found["totals"]["rewritten"] == 1
    assert found["rewritten"] == [
        {
            "dossier_code": D4,
            "procedure_name": "Đăng ký biến động quyền sử dụng đất",
            "status": "open",
            "since": "2026-11-27T09:00:00+07:00",
            "field": "NgayHenTra",
            "before": "2026-11-26T17:00:00+07:00",
            "before_seen_at": "2026-11-25T08:00:00+07:00",
            "after": "2026-12-03T17:00:00+07:00",
            "after_seen_at": "2026-11-27T09:00:00+07:00",
        }
    ]


@pytest.mark.usefixtures("province")
async def test_the_digest_forecasts_the_month_with_the_deciding_dossiers_and_holders(
    engine: AsyncEngine,
) -> None:
    found = (await content(engine))["forecast"]
    assert found["period"] == {"from": "2026-11-01", "to": "2026-11-30"}
    assert found["count"] == 2  # the province itself has nothing to count
    commune, land = found["units"]  # the unit still in play first
    assert commune == {
        "unit_code": COMMUNE,
        "unit_name": COMMUNE_NAME,
        "on_time_pct": 98.41,
        "on_time_pct_best": 98.41,
        "on_time_pct_worst": 95.24,
        "outlook": "at_risk",
        "undecided": 2,
        "deciding_count": 1,
        "deciding": [
            {
                "dossier_code": F3,
                "due_at": "2026-11-30T10:00:00+07:00",
                "responsible": E,
                "responsible_name": "Phạm Thị E",
            }
        ],
    }
    assert (land["unit_code"], land["outlook"], land["undecided"]) == (LAND, "under", 2)
    assert (land["on_time_pct_best"], land["on_time_pct_worst"]) == (60.0, 20.0)
    assert land["deciding"] == []


@pytest.fixture
def clock() -> MutableClock:
    return MutableClock(NOW)


@pytest.fixture
async def worker(
    engine: AsyncEngine, database_url: str, smtp_server: FakeSmtpServer, clock: MutableClock
) -> AsyncIterator[AlertsWorker]:
    """The alerts worker as deployed: email to the test SMTP server, clock at the digest."""
    settings = AlertsSettings(
        database_url=database_url,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_sender="doisoat@tinh.gov.vn",
        _env_file=None,
    )
    built = AlertsWorker(settings, engine, clock, AlertPlanner(settings))
    yield built
    for channel in built.channels.values():
        await channel.aclose()


@pytest.mark.usefixtures("province")
async def test_the_leader_receives_the_digest_with_the_accountability_rows(
    worker: AlertsWorker, smtp_server: FakeSmtpServer, clock: MutableClock
) -> None:
    assert await worker.tick() == 1  # one digest: the province's, to its one leader
    clock.advance(minutes=1)  # past the group wait
    assert await worker.dispatcher.dispatch_once() == 1
    [mail] = smtp_server.handler.messages()
    assert mail.rcpt_tos == [f"{LEADER}@tinh.gov.vn"]
    # Only the start: Python 3.11's header folding drops the space between two encoded words
    # of a long subject (CPython gh-144156), a matter of the email channel, not the digest.
    assert str(mail.message["Subject"]).startswith("[doisoat] Tổng hợp tuần 49/2026: UBND")
    plain = mail.message.get_body(("plain",))
    html = mail.message.get_body(("html",))
    assert plain is not None and html is not None
    text, page = plain.get_content(), html.get_content()
    for row in (
        f"     - {LAND_NAME} ({LAND}): 2 hồ sơ trễ hạn, 19 giờ làm việc vượt hạn, "
        "chưa xin lỗi 2, xin lỗi muộn 0",
        f"     - {COMMUNE_NAME} ({COMMUNE}): 1 hồ sơ trễ hạn, 2 giờ làm việc vượt hạn, "
        "chưa xin lỗi 0, xin lỗi muộn 1",
        f"     - Trần Thị B ({B}): 2 hồ sơ trễ hạn, 11 giờ làm việc vượt hạn, "
        "chưa xin lỗi 2, xin lỗi muộn 0",
        f"     - Lê Văn C ({C}): 1 hồ sơ trễ hạn, 8 giờ làm việc vượt hạn, "
        "chưa xin lỗi 1, xin lỗi muộn 0",
        "     - Đất đai: 2 hồ sơ trễ hạn, 19 giờ làm việc vượt hạn, chưa xin lỗi 2, xin lỗi muộn 0",
        "   Hồ sơ trễ hạn: 3; giờ làm việc vượt hạn: 21; chưa xin lỗi: 2; xin lỗi muộn: 1.",
        f"   - {D4} | Ngày hẹn trả kết quả: 17:00 26/11/2026 → 17:00 03/12/2026 | "
        "phát hiện 09:00 27/11/2026 | Chưa xác nhận",
        f"   - {COMMUNE_NAME} ({COMMUNE}): 98,4% / 98,4% / 95,2%. "
        "Chỉ cần 1 hồ sơ sau trễ hạn là dưới 98%:",
        f"       1. {F3} – hạn 10:00 30/11/2026 – Phạm Thị E ({E})",
    ):
        assert row in text, row
    for cell in (f"{LAND_NAME} ({LAND})", f"Trần Thị B ({B})", "Hộ tịch", "19", "11"):
        assert f">{cell}</td>" in page, cell
    assert D5 not in text  # another province's dossier
