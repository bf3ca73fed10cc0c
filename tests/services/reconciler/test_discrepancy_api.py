"""``GET /api/v1/discrepancies`` and ``POST …/ack``: shapes, filters, roles and unit scoping."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import unit_of_work
from shared.models import Discrepancy, DiscrepancyHistory, Unit
from tests.conftest import ADMIN_KEY, DESK_KEY, OFFICER_KEY, SOURCE_KEY, TEST_NOW, bearer
from tests.factories import BASE_TIME, dossier_code

MY_UNIT = "000.00.12.H08"
OLD_UNIT = "000.00.05.H08"  # merged into MY_UNIT
OTHER_UNIT = "000.00.13.H08"


async def seed(engine: AsyncEngine, *rows: dict[str, Any]) -> list[int]:
    async with unit_of_work(engine, "test") as connection:
        await connection.execute(
            insert(Unit),
            [
                {
                    "code": MY_UNIT,
                    "name": "Xã A",
                    "parent_code": None,
                    "replaced_by": None,
                    "updated_at": TEST_NOW,
                },
                {
                    "code": OLD_UNIT,
                    "name": "Huyện cũ",
                    "parent_code": None,
                    "replaced_by": MY_UNIT,
                    "updated_at": TEST_NOW,
                },
            ],
        )
        result = await connection.execute(
            insert(Discrepancy).returning(Discrepancy.id, sort_by_parameter_order=True),
            [
                {
                    "dossier_code": dossier_code(n),
                    "kind": "RETURNED_BUT_OPEN",
                    "severity": "critical",
                    "status": "open",
                    "unit_code": MY_UNIT,
                    "responsible": "tranthib.vpdkdd",
                    "reporter": "lethic.motcua",
                    "since": BASE_TIME,
                    "opened_at": BASE_TIME,
                    "details": {"system_status": 4},
                    "updated_at": BASE_TIME,
                    **row,
                }
                for n, row in enumerate(rows)
            ],
        )
        return [row.id for row in result.all()]


async def listing(client: httpx.AsyncClient, key: str, query: str = "") -> httpx.Response:
    return await client.get(f"/api/v1/discrepancies{query}", headers=bearer(key))


async def test_list_has_the_contract_shape(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    [ident] = await seed(engine, {})
    answer = await listing(client, OFFICER_KEY)
    assert answer.status_code == 200
    body = answer.json()
    assert body["total"] == 1
    item = body["items"][0]
    assert item["id"] == str(ident)
    assert {
        "id",
        "kind",
        "dossier_code",
        "unit_code",
        "severity",
        "status",
        "opened_at",
        "resolved_at",
        "responsible",
        "details",
    } <= set(item)
    assert (item["kind"], item["severity"], item["status"]) == (
        "RETURNED_BUT_OPEN",
        "critical",
        "open",
    )
    assert item["opened_at"] == BASE_TIME.isoformat()
    assert item["details"] == {"system_status": 4}


async def test_filters_combine_statuses_kinds_and_dossier(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await seed(
        engine,
        {},
        {"status": "acknowledged"},
        {"status": "resolved"},
        {"kind": "STALLED", "severity": "warning"},
    )
    assert (await listing(client, ADMIN_KEY, "?status=open,acknowledged")).json()["total"] == 3
    assert (await listing(client, ADMIN_KEY, "?kind=STALLED")).json()["total"] == 1
    only = await listing(client, ADMIN_KEY, f"?dossier={dossier_code(2)}")
    assert [i["status"] for i in only.json()["items"]] == ["resolved"]


async def test_pagination_answers_total_and_caps_the_limit(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await seed(engine, *({} for _ in range(7)))
    page = (await listing(client, ADMIN_KEY, "?limit=3&offset=5")).json()
    assert (len(page["items"]), page["total"]) == (2, 7)
    assert (await listing(client, ADMIN_KEY, "?limit=501")).status_code == 422
    assert (await listing(client, ADMIN_KEY, "?offset=-1")).status_code == 422


async def test_unknown_filter_values_are_422(client: httpx.AsyncClient) -> None:
    assert (await listing(client, ADMIN_KEY, "?status=closed")).status_code == 422
    assert (await listing(client, ADMIN_KEY, "?kind=LATE")).status_code == 422


async def test_a_merged_units_discrepancies_answer_to_the_new_unit(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await seed(engine, {"unit_code": OLD_UNIT})
    items = (await listing(client, DESK_KEY)).json()["items"]
    assert [item["unit_code"] for item in items] == [MY_UNIT]


async def test_keys_see_only_their_units(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await seed(engine, {"unit_code": OTHER_UNIT}, {})
    assert (await listing(client, OFFICER_KEY)).json()["total"] == 1
    assert (await listing(client, ADMIN_KEY)).json()["total"] == 2
    assert (await listing(client, OFFICER_KEY, f"?unit={OTHER_UNIT}")).status_code == 403
    assert (await listing(client, SOURCE_KEY)).status_code == 403


async def test_officer_acknowledges_and_the_account_is_recorded(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    [ident] = await seed(engine, {})
    answer = await client.post(f"/api/v1/discrepancies/{ident}/ack", headers=bearer(OFFICER_KEY))
    assert answer.status_code == 200
    body = answer.json()
    assert (body["status"], body["acknowledged_by"]) == ("acknowledged", "tranthib.vpdkdd")
    async with engine.connect() as connection:
        actions = (
            await connection.execute(select(DiscrepancyHistory.action, DiscrepancyHistory.actor))
        ).all()
    assert [tuple(a) for a in actions] == [("acknowledged", "tranthib.vpdkdd")]
    again = await client.post(f"/api/v1/discrepancies/{ident}/ack", headers=bearer(OFFICER_KEY))
    assert again.status_code == 200


async def test_acknowledging_is_refused_to_desk_keys_other_units_and_resolved_ones(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    mine, foreign, resolved = await seed(
        engine, {}, {"unit_code": OTHER_UNIT}, {"status": "resolved"}
    )
    ack = "/api/v1/discrepancies/{}/ack"
    assert (await client.post(ack.format(mine), headers=bearer(DESK_KEY))).status_code == 403
    assert (await client.post(ack.format(foreign), headers=bearer(OFFICER_KEY))).status_code == 403
    assert (await client.post(ack.format(resolved), headers=bearer(OFFICER_KEY))).status_code == 409
    assert (await client.post(ack.format(999999), headers=bearer(OFFICER_KEY))).status_code == 404
    assert (await client.post(ack.format("abc"), headers=bearer(OFFICER_KEY))).status_code == 404
    async with engine.connect() as connection:
        statuses = (
            (await connection.execute(select(Discrepancy.status).order_by(Discrepancy.id)))
            .scalars()
            .all()
        )
    assert statuses == ["open", "open", "resolved"]
