"""``POST /api/v1/events`` and ``GET /api/v1/dossiers/{code}`` as contract §4–§5 describe them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import orjson
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from services.app.asgi import create_app
from shared.clock import fixed_clock
from shared.config import BaseDoisoatSettings
from tests.conftest import (
    ADMIN_KEY,
    DESK_KEY,
    OFFICER_KEY,
    OTHER_SOURCE_KEY,
    SOURCE_KEY,
    TEST_NOW,
    bearer,
)
from tests.factories import BASE_TIME, dossier_code, progress, snapshot

CODE = dossier_code(7)


def metric(outcome: str) -> float:
    value = REGISTRY.get_sample_value("doisoat_ingest_events_total", {"outcome": outcome})
    return value or 0.0


async def post(
    client: httpx.AsyncClient, items: list[dict[str, Any]], key: str = SOURCE_KEY
) -> httpx.Response:
    return await client.post("/api/v1/events", json=items, headers=bearer(key))


async def test_without_configured_keys_every_call_is_refused_with_how_to(
    engine: AsyncEngine, database_url: str
) -> None:
    settings = BaseDoisoatSettings(database_url=database_url, _env_file=None)
    app = create_app(settings, engine=engine, clock=fixed_clock(TEST_NOW))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        answer = await http.post("/api/v1/events", json=[], headers=bearer(SOURCE_KEY))
        read = await http.get(f"/api/v1/dossiers/{CODE}")
    assert answer.status_code == read.status_code == 503
    assert "DOISOAT_API_KEYS" in answer.json()["detail"]


async def test_missing_or_unknown_key_is_401(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/events", json=[])).status_code == 401
    assert (await post(client, [], key="not-a-key-000000000")).status_code == 401


async def test_key_of_another_role_is_403(client: httpx.AsyncClient) -> None:
    assert (await post(client, [], key=DESK_KEY)).status_code == 403


async def test_each_item_is_answered_in_order(client: httpx.AsyncClient) -> None:
    first = snapshot(CODE, event_id="s1", emitted_at=BASE_TIME + timedelta(hours=1))
    older = snapshot(CODE, event_id="s0", emitted_at=BASE_TIME)
    await post(client, [first])
    stored_before = metric("stored")
    bad = snapshot(CODE, event_id="bad", emitted_at=BASE_TIME, status=11)
    step = progress(CODE, event_id="p1", emitted_at=BASE_TIME, step_at=BASE_TIME)
    answer = await post(client, [first, older, bad, step, step])
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [(r["event_id"], r["outcome"]) for r in results] == [
        ("s1", "duplicate"),
        ("s0", "stale"),
        ("bad", "refused"),
        ("p1", "stored"),
        ("p1", "duplicate"),
    ]
    assert results[2]["reason"].startswith("schema:")
    assert results[0]["reason"] is None
    assert metric("stored") == stored_before + 1


async def test_items_outside_the_keys_units_are_refused_and_not_written(
    client: httpx.AsyncClient,
) -> None:
    foreign = snapshot(
        dossier_code(1, "000.00.13.H08"), event_id="f1", emitted_at=BASE_TIME, unit="000.00.13.H08"
    )
    mine = snapshot(CODE, event_id="m1", emitted_at=BASE_TIME)
    refused_before = metric("refused")
    results = (await post(client, [foreign, mine])).json()["results"]
    assert [r["outcome"] for r in results] == ["refused", "stored"]
    assert "000.00.13.H08" in results[0]["reason"]
    assert metric("refused") == refused_before + 1
    lookup = await client.get(
        f"/api/v1/dossiers/{dossier_code(1, '000.00.13.H08')}", headers=bearer(ADMIN_KEY)
    )
    assert lookup.status_code == 404


async def test_progress_step_is_scoped_by_its_dossiers_known_unit(
    client: httpx.AsyncClient,
) -> None:
    await post(client, [snapshot(CODE, event_id="s1", emitted_at=BASE_TIME)])
    step = progress(CODE, event_id="p1", emitted_at=BASE_TIME, step_at=BASE_TIME)
    results = (await post(client, [step], key=OTHER_SOURCE_KEY)).json()["results"]
    assert results[0]["outcome"] == "refused"


async def test_more_than_1000_items_is_413(client: httpx.AsyncClient) -> None:
    items = [snapshot(CODE, event_id=f"e{i}", emitted_at=BASE_TIME) for i in range(1001)]
    assert (await post(client, items)).status_code == 413


async def test_body_over_10_mib_is_413(client: httpx.AsyncClient) -> None:
    body = b"[" + b" " * (10 * 1024 * 1024) + b"]"
    answer = await client.post(
        "/api/v1/events",
        content=body,
        headers={**bearer(SOURCE_KEY), "Content-Type": "application/json"},
    )
    assert answer.status_code == 413


async def test_invalid_json_is_400_and_a_non_array_is_422(client: httpx.AsyncClient) -> None:
    headers = {**bearer(SOURCE_KEY), "Content-Type": "application/json"}
    assert (await client.post("/api/v1/events", content=b"[{", headers=headers)).status_code == 400
    assert (await client.post("/api/v1/events", content=b"{}", headers=headers)).status_code == 422


async def test_dossier_read_shows_state_and_progress(client: httpx.AsyncClient) -> None:
    await post(
        client,
        [
            snapshot(
                CODE,
                event_id="s1",
                emitted_at=BASE_TIME,
                status=4,
                ChuHoSo="Nguyễn Văn An",
                SoGiayToChuHoSo="079123456789",
            ),
            progress(CODE, event_id="p1", emitted_at=BASE_TIME, step_at=BASE_TIME),
        ],
    )
    answer = await client.get(f"/api/v1/dossiers/{CODE}", headers=bearer(OFFICER_KEY))
    assert answer.status_code == 200
    body = answer.json()
    assert body["code"] == CODE and body["status"] == 4
    assert body["unit_code"] == "000.00.12.H08"
    assert body["due_at"] == (BASE_TIME + timedelta(days=7)).isoformat()
    assert body["ChuHoSo"] == "Nguyễn Văn An"
    assert [step["event_id"] for step in body["progress"]] == ["p1"]
    assert body["field_reports"] == [] and body["discrepancies"] == []


async def test_desk_sees_personal_data_masked(client: httpx.AsyncClient) -> None:
    await post(
        client,
        [
            snapshot(
                CODE,
                event_id="s1",
                emitted_at=BASE_TIME,
                ChuHoSo="Nguyễn Văn An",
                SoGiayToChuHoSo="079123456789",
            )
        ],
    )
    body = (await client.get(f"/api/v1/dossiers/{CODE}", headers=bearer(DESK_KEY))).json()
    assert body["ChuHoSo"] == "Nguyễn V. An"
    assert body["SoGiayToChuHoSo"] == "*********789"
    assert "079123456789" not in orjson.dumps(body).decode()


async def test_unknown_dossier_is_404_and_foreign_unit_is_403(client: httpx.AsyncClient) -> None:
    assert (
        await client.get(f"/api/v1/dossiers/{CODE}", headers=bearer(ADMIN_KEY))
    ).status_code == 404
    foreign = dossier_code(3, "000.00.13.H08")
    await post(
        client,
        [snapshot(foreign, event_id="f", emitted_at=BASE_TIME, unit="000.00.13.H08")],
        key=ADMIN_KEY,
    )
    assert (
        await client.get(f"/api/v1/dossiers/{foreign}", headers=bearer(OFFICER_KEY))
    ).status_code == 403


async def test_newest_event_per_source_is_exposed_for_silence_alerts(
    client: httpx.AsyncClient,
) -> None:
    newest = BASE_TIME + timedelta(days=400)
    await post(client, [snapshot(CODE, event_id="n1", emitted_at=newest)])
    await post(client, [snapshot(CODE, event_id="n0", emitted_at=newest - timedelta(days=1))])
    value = REGISTRY.get_sample_value(
        "doisoat_ingest_newest_event_timestamp_seconds", {"source": "motcua-tinh"}
    )
    assert value == newest.timestamp()
