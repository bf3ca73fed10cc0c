"""The audit log: every write through the API and every acknowledgement, read by admins only."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.access import audit
from services.app.asgi import create_app
from shared.db import unit_of_work
from shared.models import AuditEntry, Discrepancy, Unit
from tests.conftest import (
    ADMIN_KEY,
    DESK_KEY,
    OFFICER_KEY,
    SOURCE_KEY,
    TEST_NOW,
    bearer,
    make_settings,
)
from tests.factories import BASE_TIME, dossier_code, snapshot

UNIT = "000.00.12.H08"
CODE = dossier_code(21)
PERSONAL = "Nguyễn Văn Bí Mật 079123456789"  # what must never reach the log


class Clock:
    def __init__(self) -> None:
        self.now = TEST_NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(engine: AsyncEngine, database_url: str, clock: Clock) -> FastAPI:
    return create_app(make_settings(database_url), engine=engine, clock=clock)


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 51000))
    async with httpx.AsyncClient(transport=transport, base_url="http://doisoat.test") as client:
        yield client


async def entries(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as connection:
        query = select(AuditEntry).order_by(AuditEntry.id)
        return list((await connection.execute(query)).all())


def brief(row: Any) -> tuple[Any, ...]:
    return (row.account, row.role, row.action, row.target, row.status_code)


async def seed_discrepancies(engine: AsyncEngine, count: int) -> list[int]:
    """The unit and ``count`` open discrepancies about dossiers of it."""
    async with unit_of_work(engine, "test") as connection:
        await connection.execute(
            insert(Unit).values(
                code=UNIT, name="Xã A", parent_code=None, replaced_by=None, updated_at=TEST_NOW
            )
        )
        result = await connection.execute(
            insert(Discrepancy).returning(Discrepancy.id, sort_by_parameter_order=True),
            [
                {
                    "dossier_code": dossier_code(30 + n),
                    "kind": "RETURNED_BUT_OPEN",
                    "severity": "critical",
                    "status": "open",
                    "unit_code": UNIT,
                    "responsible": "tranthib.vpdkdd",
                    "since": BASE_TIME,
                    "opened_at": BASE_TIME,
                    "details": {},
                    "updated_at": BASE_TIME,
                }
                for n in range(count)
            ],
        )
        return [row.id for row in result.all()]


def field_report(report_id: str = "desk-1", unit: str = UNIT) -> dict[str, Any]:
    return {
        "report_id": report_id,
        "dossier_code": CODE,
        "kind": "returned",
        "occurred_at": "2024-10-30T10:40:00+07:00",
        "officer": "lethic.motcua",
        "unit_code": unit,
        "note": PERSONAL,
    }


async def test_writes_are_recorded_with_who_what_target_status_and_client(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    event = snapshot(CODE, event_id="s1", emitted_at=BASE_TIME, ChuHoSo=PERSONAL)
    assert (
        await http.post("/api/v1/events", json=[event], headers=bearer(SOURCE_KEY))
    ).status_code == 200
    assert (
        await http.put(f"/api/v1/units/{UNIT}", json={"name": "Xã A"}, headers=bearer(ADMIN_KEY))
    ).status_code == 200
    assert (
        await http.post("/api/v1/field-reports", json=field_report(), headers=bearer(DESK_KEY))
    ).status_code == 201

    rows = await entries(engine)
    assert [brief(row) for row in rows] == [
        ("motcua-tinh", "source", "POST /api/v1/events", None, 200),
        ("quantri", "admin", "PUT /api/v1/units/{code}", UNIT, 200),
        ("lethic.motcua", "desk", "POST /api/v1/field-reports", None, 201),
    ]
    assert {row.client_address for row in rows} == {"203.0.113.7"}
    assert {row.at for row in rows} == {TEST_NOW}


async def test_refusals_are_recorded_and_reads_are_not(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    other_unit = field_report("desk-2", unit="000.00.99.H08")
    refused = [
        await http.post("/api/v1/events", json=[], headers=bearer(DESK_KEY)),  # role
        await http.post("/api/v1/field-reports", json=other_unit, headers=bearer(DESK_KEY)),
        await http.put(f"/api/v1/units/{UNIT}", json={"name": "X"}, headers=bearer(OFFICER_KEY)),
        await http.post("/api/v1/events", json=[]),  # no key
        await http.post("/api/v1/events", json=[], headers=bearer("not-a-key-0000000000")),
    ]
    assert [answer.status_code for answer in refused] == [403, 403, 403, 401, 401]
    await http.get(f"/api/v1/dossiers/{CODE}", headers=bearer(OFFICER_KEY))
    await http.get("/api/v1/discrepancies", headers=bearer(OFFICER_KEY))

    assert [brief(row) for row in await entries(engine)] == [
        ("lethic.motcua", "desk", "POST /api/v1/events", None, 403),
        ("lethic.motcua", "desk", "POST /api/v1/field-reports", None, 403),
        ("tranthib.vpdkdd", "officer", "PUT /api/v1/units/{code}", UNIT, 403),
        (None, None, "POST /api/v1/events", None, 401),
        (None, None, "POST /api/v1/events", None, 401),
    ]


async def test_acknowledgements_by_api_and_by_link_are_recorded(
    http: httpx.AsyncClient, app: FastAPI, engine: AsyncEngine
) -> None:
    first, second = await seed_discrepancies(engine, 2)
    answer = await http.post(f"/api/v1/discrepancies/{first}/ack", headers=bearer(OFFICER_KEY))
    assert answer.status_code == 200
    token = app.state.ack_links.token_for(second, "nguyenvanc.lanhdao")
    assert (await http.post(f"/ack/{token}")).status_code == 200
    assert (await http.get(f"/ack/{token}")).status_code == 200  # showing is no write
    assert (await http.post("/ack/not-a-real-token")).status_code == 400

    rows = await entries(engine)
    assert [brief(row) for row in rows] == [
        (
            "tranthib.vpdkdd",
            "officer",
            "POST /api/v1/discrepancies/{discrepancy_id}/ack",
            str(first),
            200,
        ),
        ("nguyenvanc.lanhdao", "link", "POST /ack/{token}", str(second), 200),
        (None, "link", "POST /ack/{token}", None, 400),
    ]
    for row in rows:
        assert token not in " ".join(str(value) for value in row)


async def test_request_bodies_never_reach_the_log(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    event = snapshot(CODE, event_id="s1", emitted_at=BASE_TIME, ChuHoSo=PERSONAL)
    await http.post("/api/v1/events", json=[event], headers=bearer(SOURCE_KEY))
    await http.post("/api/v1/field-reports", json=field_report(), headers=bearer(DESK_KEY))
    rows = await entries(engine)
    assert len(rows) == 2
    for row in rows:
        assert PERSONAL not in " ".join(str(value) for value in row)
        assert CODE not in " ".join(str(value) for value in row)  # bodies, not even codes


async def test_a_failing_audit_write_never_changes_the_answer(
    http: httpx.AsyncClient,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr(audit, "record", broken)
    with caplog.at_level(logging.ERROR, logger="doisoat.audit"):
        answer = await http.post(
            "/api/v1/field-reports", json=field_report(), headers=bearer(DESK_KEY)
        )
    assert answer.status_code == 201
    assert any(record.getMessage() == "audit entry not written" for record in caplog.records)
    assert await entries(engine) == []


async def test_audit_is_for_admins_only(http: httpx.AsyncClient) -> None:
    for key in (OFFICER_KEY, DESK_KEY, SOURCE_KEY):
        assert (await http.get("/api/v1/audit", headers=bearer(key))).status_code == 403
    assert (await http.get("/api/v1/audit")).status_code == 401
    answer = await http.get("/api/v1/audit", headers=bearer(ADMIN_KEY))
    assert answer.status_code == 200
    assert answer.json() == {"items": [], "total": 0}


async def test_audit_lists_newest_first_with_filters_and_pages(
    http: httpx.AsyncClient, engine: AsyncEngine, clock: Clock
) -> None:
    await http.post("/api/v1/events", json=[], headers=bearer(SOURCE_KEY))
    clock.now = TEST_NOW + timedelta(hours=1)
    await http.put(f"/api/v1/units/{UNIT}", json={"name": "Xã A"}, headers=bearer(ADMIN_KEY))
    clock.now = TEST_NOW + timedelta(hours=2)
    await http.post("/api/v1/events", json=[], headers=bearer(DESK_KEY))

    async def page(**params: Any) -> dict[str, Any]:
        answer = await http.get("/api/v1/audit", params=params, headers=bearer(ADMIN_KEY))
        assert answer.status_code == 200, answer.text
        return cast(dict[str, Any], answer.json())

    everything = await page()
    assert everything["total"] == 3
    assert [item["action"] for item in everything["items"]] == [
        "POST /api/v1/events",
        "PUT /api/v1/units/{code}",
        "POST /api/v1/events",
    ]
    newest = everything["items"][0]
    assert newest["account"] == "lethic.motcua" and newest["status_code"] == 403
    assert newest["at"] == "2024-11-06T12:00:00+07:00"
    assert newest["client_address"] == "203.0.113.7" and isinstance(newest["id"], str)

    by_account = await page(account="motcua-tinh")
    assert [item["role"] for item in by_account["items"]] == ["source"]
    by_action = await page(action="POST /api/v1/events")
    assert by_action["total"] == 2
    since = await page(since=(TEST_NOW + timedelta(minutes=30)).isoformat())
    assert since["total"] == 2
    assert {item["account"] for item in since["items"]} == {"quantri", "lethic.motcua"}
    paged = await page(limit=1, offset=1)
    assert paged["total"] == 3
    assert [item["target"] for item in paged["items"]] == [UNIT]


@pytest.mark.parametrize(
    "params",
    [{"limit": 501}, {"limit": 0}, {"offset": -1}, {"since": "2024-11-06T08:00:00"}],
)
async def test_audit_refuses_bad_parameters_with_a_4xx(
    http: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    answer = await http.get("/api/v1/audit", params=params, headers=bearer(ADMIN_KEY))
    assert answer.status_code == 422
