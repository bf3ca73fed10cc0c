"""Applicants' personal data in API answers (issue 6, point 3; Nghị định 13/2023/NĐ-CP).

``ChuHoSo`` and ``SoGiayToChuHoSo`` are whole for the roles that need them (officer, admin),
masked for the desk, unreadable for a source key; the discrepancy list, the notifications
outbox and the field-report answers never carry the identity number (nor the whole name).
Everything is written through the real paths: the directory endpoints, ``POST /api/v1/events``,
``POST /api/v1/field-reports`` and a reconciler pass that opens the discrepancy and plans its
alerts.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.alerts.config import AlertsSettings
from services.alerts.planner import AlertPlanner
from services.reconciler.config import ReconcilerSettings
from services.reconciler.worker import Reconciler
from shared.clock import fixed_clock
from shared.dvcqg import format_thoi_diem
from shared.models import Notification
from tests.conftest import ADMIN_KEY, DESK_KEY, OFFICER_KEY, SOURCE_KEY, TEST_NOW, bearer
from tests.factories import UNIT, dossier_code, progress, snapshot

CODE = dossier_code(42)
NAME = "Nguyễn Thị Bích Ngọc"
ID_NUMBER = "079304001234"
MASKED_NAME = "Nguyễn T. B. Ngọc"
MASKED_ID = "*********234"
# Pieces that would give the person away even when the whole string is not there.
SECRETS = (NAME, ID_NUMBER, "Bích Ngọc", "Thị Bích", ID_NUMBER[:9])
REPORT = {
    "report_id": "desk-42-returned",
    "dossier_code": CODE,
    "kind": "returned",
    "occurred_at": (TEST_NOW - timedelta(hours=3)).isoformat(),
    "officer": "lethic.motcua",
    "unit_code": UNIT,
}

WHOLE = {"officer": OFFICER_KEY, "admin": ADMIN_KEY}
READERS = {"desk": DESK_KEY, **WHOLE}


def assert_no_personal_data(answer: httpx.Response | dict[str, Any] | list[Any]) -> None:
    text = answer.text if isinstance(answer, httpx.Response) else orjson.dumps(answer).decode()
    for secret in SECRETS:
        assert secret not in text


async def put(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> None:
    answer = await client.put(path, json=body, headers=bearer(ADMIN_KEY))
    assert answer.status_code == 200, answer.text


@pytest.fixture
async def seeded(
    client: httpx.AsyncClient, engine: AsyncEngine, database_url: str
) -> httpx.Response:
    """A dossier with its applicant, still processing (4), returned at the desk 3 hours ago;
    a reconciler pass opens RETURNED_BUT_OPEN and writes its e-mails to the outbox. Answers
    the field report's POST."""
    await put(client, f"/api/v1/units/{UNIT}", {"name": "Xã A"})
    for account, full_name, role, email in (
        ("tranthib.vpdkdd", "Trần Thị B", "handler", "b@tinh.gov.vn"),
        ("lethic.motcua", "Lê Thị C", "desk", "c@tinh.gov.vn"),
    ):
        await put(
            client,
            f"/api/v1/officers/{account}",
            {"full_name": full_name, "unit_code": UNIT, "role": role, "email": email},
        )
    two_days_ago = TEST_NOW - timedelta(days=2)
    events = [
        snapshot(
            CODE,
            event_id="pd-s1",
            emitted_at=two_days_ago,
            status=4,
            NgayHenTra=format_thoi_diem(TEST_NOW + timedelta(days=5)),
            ChuHoSo=NAME,
            SoGiayToChuHoSo=ID_NUMBER,
        ),
        progress(CODE, event_id="pd-p1", emitted_at=two_days_ago, step_at=two_days_ago),
    ]
    stored = await client.post("/api/v1/events", json=events, headers=bearer(SOURCE_KEY))
    assert stored.status_code == 200, stored.text
    assert {item["outcome"] for item in stored.json()["results"]} == {"stored"}
    assert_no_personal_data(stored)

    report = await client.post("/api/v1/field-reports", json=REPORT, headers=bearer(DESK_KEY))
    assert report.status_code == 201, report.text

    planner = AlertPlanner(
        AlertsSettings(database_url=database_url, smtp_host="127.0.0.1", _env_file=None)
    )
    reconciler = Reconciler(
        ReconcilerSettings(database_url=database_url, _env_file=None),
        engine,
        fixed_clock(TEST_NOW),
        on_changes=lambda connection, changes, now: planner.on_changes(
            connection, changes, now=now
        ),
    )
    assert await reconciler.drain() == 1
    return report


async def test_desk_sees_the_applicant_masked(
    client: httpx.AsyncClient, seeded: httpx.Response
) -> None:
    answer = await client.get(f"/api/v1/dossiers/{CODE}", headers=bearer(DESK_KEY))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ChuHoSo"] == MASKED_NAME
    assert body["SoGiayToChuHoSo"] == MASKED_ID
    # The rest of the answer (steps, reports, discrepancies) leaks nothing either.
    assert_no_personal_data(answer)
    assert [report["report_id"] for report in body["field_reports"]] == [REPORT["report_id"]]
    assert [item["kind"] for item in body["discrepancies"]] == ["RETURNED_BUT_OPEN"]


@pytest.mark.parametrize("role", sorted(WHOLE))
async def test_officer_and_admin_see_the_applicant_whole(
    client: httpx.AsyncClient, seeded: httpx.Response, role: str
) -> None:
    answer = await client.get(f"/api/v1/dossiers/{CODE}", headers=bearer(WHOLE[role]))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ChuHoSo"] == NAME
    assert body["SoGiayToChuHoSo"] == ID_NUMBER
    # Only in those two fields: not repeated in steps, reports or discrepancies.
    rest = {k: v for k, v in body.items() if k not in ("ChuHoSo", "SoGiayToChuHoSo")}
    assert_no_personal_data(rest)


async def test_a_source_key_cannot_read_dossiers_at_all(
    client: httpx.AsyncClient, seeded: httpx.Response
) -> None:
    answer = await client.get(f"/api/v1/dossiers/{CODE}", headers=bearer(SOURCE_KEY))
    assert answer.status_code == 403
    assert_no_personal_data(answer)


@pytest.mark.parametrize("role", sorted(READERS))
async def test_discrepancy_list_never_carries_personal_data(
    client: httpx.AsyncClient, seeded: httpx.Response, role: str
) -> None:
    for query in ("", f"?dossier={CODE}", "?status=open,acknowledged,resolved"):
        answer = await client.get(f"/api/v1/discrepancies{query}", headers=bearer(READERS[role]))
        assert answer.status_code == 200, answer.text
        assert [item["dossier_code"] for item in answer.json()["items"]] == [CODE]
        assert_no_personal_data(answer)


async def test_notifications_never_carry_the_id_number_and_mask_the_name(
    client: httpx.AsyncClient, engine: AsyncEngine, seeded: httpx.Response
) -> None:
    answer = await client.get("/api/v1/notifications", headers=bearer(ADMIN_KEY))
    assert answer.status_code == 200, answer.text
    assert answer.json()["total"] >= 1
    assert_no_personal_data(answer)
    # What the alerts themselves will say: the applicant masked, the number absent.
    async with engine.connect() as connection:
        contents = (await connection.execute(select(Notification.content))).scalars().all()
    assert contents
    for content in contents:
        assert_no_personal_data(content)
        assert content["applicant"] == MASKED_NAME


async def test_field_report_answers_never_carry_personal_data(
    client: httpx.AsyncClient, seeded: httpx.Response
) -> None:
    assert_no_personal_data(seeded)
    again = await client.post("/api/v1/field-reports", json=REPORT, headers=bearer(DESK_KEY))
    assert again.status_code == 200, again.text
    assert_no_personal_data(again)
    conflict = await client.post(
        "/api/v1/field-reports",
        json={**REPORT, "note": "khác"},
        headers=bearer(DESK_KEY),
    )
    assert conflict.status_code == 409
    assert_no_personal_data(conflict)
    csv = (
        "ma_ho_so,loai,thoi_diem,can_bo,don_vi,ghi_chu\n"
        f"{CODE},rut_ho_so,{(TEST_NOW - timedelta(hours=1)).isoformat()},lethic.motcua,{UNIT},"
        "Công dân rút hồ sơ\n"
    )
    imported = await client.post(
        "/api/v1/field-reports/import",
        content=csv.encode(),
        headers={**bearer(DESK_KEY), "Content-Type": "text/csv"},
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["accepted"] == 1, imported.text
    assert_no_personal_data(imported)
