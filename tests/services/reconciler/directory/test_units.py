"""``PUT/GET /api/v1/units``: upsert, loops refused, mergers answered through ``replaced_by``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import DESK_KEY, OFFICER_KEY, bearer
from tests.services.reconciler.directory.conftest import ADMIN, MovableClock

PROVINCE = "000.00.00.H08"
OLD = "000.00.12.H08"
NEW = "000.00.12.H49"


async def put_unit(
    client: httpx.AsyncClient,
    code: str,
    name: str = "Sở Tài nguyên và Môi trường",
    parent_code: str | None = None,
    replaced_by: str | None = None,
) -> httpx.Response:
    body = {"name": name, "parent_code": parent_code, "replaced_by": replaced_by}
    return await client.put(f"/api/v1/units/{code}", json=body, headers=ADMIN)


async def test_put_creates_then_updates_a_unit(
    client: httpx.AsyncClient, clock: MovableClock
) -> None:
    created = await put_unit(client, OLD, name="Sở TN&MT", parent_code=PROVINCE)
    clock.advance(hours=1)
    updated = await put_unit(client, OLD, name="Sở Nông nghiệp và Môi trường", parent_code=PROVINCE)
    read = await client.get(f"/api/v1/units/{OLD}", headers=ADMIN)

    assert created.status_code == updated.status_code == 200
    assert created.json() == {
        "code": OLD,
        "name": "Sở TN&MT",
        "parent_code": PROVINCE,
        "replaced_by": None,
        "updated_at": "2024-11-06T10:00:00+07:00",
    }
    assert updated.json()["name"] == "Sở Nông nghiệp và Môi trường"
    assert updated.json()["updated_at"] == "2024-11-06T11:00:00+07:00"
    assert read.json() == {**updated.json(), "answering_unit": OLD}


async def test_identical_put_keeps_updated_at(
    client: httpx.AsyncClient, clock: MovableClock
) -> None:
    first = await put_unit(client, OLD, parent_code=PROVINCE)
    clock.advance(hours=1)
    again = await put_unit(client, OLD, parent_code=PROVINCE)

    assert again.status_code == 200
    assert again.json() == first.json()


async def test_parent_and_successor_need_not_exist_yet(client: httpx.AsyncClient) -> None:
    answer = await put_unit(client, OLD, parent_code="000.00.00.H99", replaced_by=NEW)

    assert answer.status_code == 200
    assert (await client.get("/api/v1/units/000.00.00.H99", headers=ADMIN)).status_code == 404


async def test_parent_cycle_is_refused_with_409(client: httpx.AsyncClient) -> None:
    await put_unit(client, "C")
    await put_unit(client, "A", parent_code="B")
    await put_unit(client, "B", parent_code="C")

    answer = await put_unit(client, "C", parent_code="A")

    assert answer.status_code == 409
    assert "cycle: C → A → B → C" in answer.json()["detail"]
    assert "vòng lặp" in answer.json()["detail"]
    assert (await client.get("/api/v1/units/C", headers=ADMIN)).json()["parent_code"] is None


async def test_successor_cycle_is_refused_with_409(client: httpx.AsyncClient) -> None:
    await put_unit(client, OLD, replaced_by=NEW)

    answer = await put_unit(client, NEW, replaced_by=OLD)

    assert answer.status_code == 409
    assert "replaced_by" in answer.json()["detail"]
    assert (await client.get(f"/api/v1/units/{NEW}", headers=ADMIN)).status_code == 404


async def test_cycle_check_keeps_the_two_relations_apart(client: httpx.AsyncClient) -> None:
    await put_unit(client, NEW, parent_code=PROVINCE)

    answer = await put_unit(client, PROVINCE, replaced_by=NEW)

    assert answer.status_code == 200


@pytest.mark.parametrize("field", ["parent_code", "replaced_by"])
async def test_unit_cannot_point_at_itself(client: httpx.AsyncClient, field: str) -> None:
    answer = await client.put(f"/api/v1/units/{OLD}", json={"name": "x", field: OLD}, headers=ADMIN)

    assert answer.status_code == 422


@pytest.mark.parametrize(
    ("code", "body"),
    [
        ("000 00", {"name": "x"}),
        ("A" * 65, {"name": "x"}),
        (OLD, {"name": ""}),
        (OLD, {"name": "x" * 501}),
        (OLD, {"name": "x", "parent_code": "H08/1"}),
        (OLD, {"name": "x", "replaced_by": "mã mới"}),
        (OLD, {"name": "x", "parnet_code": PROVINCE}),
    ],
)
async def test_malformed_unit_is_422(
    client: httpx.AsyncClient, code: str, body: dict[str, Any]
) -> None:
    answer = await client.put(f"/api/v1/units/{code}", json=body, headers=ADMIN)

    assert answer.status_code == 422


async def test_merged_unit_answers_through_its_successor(client: httpx.AsyncClient) -> None:
    await put_unit(client, NEW, name="Sở Nông nghiệp và Môi trường")
    await put_unit(client, "000.00.12.H38", replaced_by="000.00.13.H38")
    await put_unit(client, "000.00.13.H38", replaced_by=NEW)

    direct = await client.get("/api/v1/units/000.00.13.H38", headers=ADMIN)
    chained = await client.get("/api/v1/units/000.00.12.H38", headers=ADMIN)

    assert direct.json()["answering_unit"] == NEW
    assert chained.json()["answering_unit"] == NEW
    assert chained.json()["replaced_by"] == "000.00.13.H38"


async def test_unknown_unit_is_404(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/v1/units/000.00.77.H08", headers=ADMIN)

    assert answer.status_code == 404


async def test_unit_list_is_paged_by_code(client: httpx.AsyncClient) -> None:
    for code in ("C", "A", "B"):
        await put_unit(client, code, name=f"Đơn vị {code}")

    page = await client.get("/api/v1/units", params={"limit": 2, "offset": 1}, headers=ADMIN)
    default = await client.get("/api/v1/units", headers=ADMIN)

    assert page.status_code == 200
    assert page.json()["total"] == 3
    assert [item["code"] for item in page.json()["items"]] == ["B", "C"]
    assert len(default.json()["items"]) == 3


@pytest.mark.parametrize("params", [{"limit": 501}, {"limit": 0}, {"offset": -1}])
async def test_out_of_range_paging_is_422(
    client: httpx.AsyncClient, params: dict[str, int]
) -> None:
    answer = await client.get("/api/v1/units", params=params, headers=ADMIN)

    assert answer.status_code == 422


DIRECTORY_CALLS = [
    ("PUT", f"/api/v1/units/{OLD}", {"json": {"name": "x"}}),
    ("GET", "/api/v1/units", {}),
    ("GET", f"/api/v1/units/{OLD}", {}),
    ("PUT", "/api/v1/officers/a", {"json": {"full_name": "A", "unit_code": OLD, "role": "desk"}}),
    ("GET", "/api/v1/officers", {}),
    ("GET", "/api/v1/officers/a", {}),
    ("POST", "/api/v1/officers/import", {"content": b"account\n"}),
]


@pytest.mark.parametrize(("method", "url", "options"), DIRECTORY_CALLS)
@pytest.mark.parametrize("key", [DESK_KEY, OFFICER_KEY])
async def test_non_admin_keys_are_403(
    client: httpx.AsyncClient, method: str, url: str, options: dict[str, Any], key: str
) -> None:
    answer = await client.request(method, url, headers=bearer(key), **options)

    assert answer.status_code == 403


@pytest.mark.parametrize(("method", "url", "options"), DIRECTORY_CALLS)
async def test_no_key_is_401(
    client: httpx.AsyncClient, method: str, url: str, options: dict[str, Any]
) -> None:
    answer = await client.request(method, url, **options)

    assert answer.status_code == 401
