"""``PUT/GET /api/v1/officers``: upsert, field rules (phone, e-mail, role), filters."""

from __future__ import annotations

import httpx
import pytest

from services.reconciler.directory.schemas import normalise_email, normalise_phone
from tests.conftest import DESK_KEY, bearer
from tests.services.reconciler.directory.conftest import ADMIN, MovableClock

UNIT = "000.00.12.H08"
OFFICER = {
    "full_name": "Trần Thị B",
    "unit_code": UNIT,
    "role": "handler",
    "email": "tranthib@stnmt.gov.vn",
    "zalo_user_id": "2512523625412515",
    "phone": "0912345678",
}


async def put_officer(client: httpx.AsyncClient, account: str, **changes: object) -> httpx.Response:
    body = {**OFFICER, **changes}
    return await client.put(f"/api/v1/officers/{account}", json=body, headers=ADMIN)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("0912345678", "84912345678"),
        ("+84912345678", "84912345678"),
        ("84912345678", "84912345678"),
        ("0912 345 678", "84912345678"),
        ("0912.345.678", "84912345678"),
        ("+84 383-456-789", "84383456789"),
        ("0701234567", "84701234567"),
    ],
)
def test_phone_is_normalised_to_84_digits(given: str, stored: str) -> None:
    assert normalise_phone(given) == stored


@pytest.mark.parametrize(
    "given",
    [
        "091234567",  # nine digits
        "09123456789",  # eleven digits
        "0084912345678",
        "+840912345678",
        "84 0912345678",
        "0243825123",  # landline: ZNS reaches mobiles only
        "0112345678",
        "(091) 2345678",
        "０９１２３４５６７８",  # full-width digits
        "phone",
    ],
)
def test_other_phone_shapes_are_refused(given: str) -> None:
    with pytest.raises(ValueError, match="Vietnamese mobile"):
        normalise_phone(given)


def test_email_domain_is_lower_cased() -> None:
    assert normalise_email("Tran.Thi-B+tthc@STNMT.Gov.VN") == "Tran.Thi-B+tthc@stnmt.gov.vn"


async def test_put_officer_stores_the_normalised_phone(client: httpx.AsyncClient) -> None:
    answer = await put_officer(client, "tranthib.vpdkdd", phone="+84 912 345 678")

    assert answer.status_code == 200
    assert answer.json()["phone"] == "84912345678"


async def test_put_officer_with_a_bad_phone_is_422(client: httpx.AsyncClient) -> None:
    answer = await put_officer(client, "tranthib.vpdkdd", phone="0243825123")

    assert answer.status_code == 422
    assert "phone" in str(answer.json()["detail"])


async def test_put_creates_then_updates_an_officer(
    client: httpx.AsyncClient, clock: MovableClock
) -> None:
    created = await put_officer(client, "tranthib.vpdkdd")
    clock.advance(minutes=5)
    updated = await put_officer(client, "tranthib.vpdkdd", role="leader", email=None, active=False)
    read = await client.get("/api/v1/officers/tranthib.vpdkdd", headers=ADMIN)

    assert created.status_code == updated.status_code == 200
    assert created.json() == {
        **OFFICER,
        "account": "tranthib.vpdkdd",
        "phone": "84912345678",
        "active": True,
        "updated_at": "2024-11-06T10:00:00+07:00",
    }
    assert updated.json()["role"] == "leader"
    assert updated.json()["email"] is None
    assert updated.json()["active"] is False
    assert updated.json()["updated_at"] == "2024-11-06T10:05:00+07:00"
    assert read.json() == updated.json()


async def test_identical_officer_put_keeps_updated_at(
    client: httpx.AsyncClient, clock: MovableClock
) -> None:
    first = await put_officer(client, "a")
    clock.advance(minutes=5)
    again = await put_officer(client, "a")

    assert again.json() == first.json()


async def test_omitted_contact_fields_are_null_and_blank_is_null(
    client: httpx.AsyncClient,
) -> None:
    body = {"full_name": "Lê Thị C", "unit_code": UNIT, "role": "desk", "email": "  "}
    answer = await client.put("/api/v1/officers/lethic.motcua", json=body, headers=ADMIN)

    assert answer.status_code == 200
    assert answer.json()["email"] is answer.json()["phone"] is answer.json()["zalo_user_id"] is None
    assert answer.json()["active"] is True


@pytest.mark.parametrize(
    "changes",
    [
        {"role": "admin"},
        {"role": "Handler"},
        {"email": "tranthib"},
        {"email": "tranthib@localhost"},
        {"email": "trần@stnmt.gov.vn"},
        {"email": "a@@b.vn"},
        {"unit_code": "Sở TN&MT"},
        {"full_name": ""},
        {"zalo_user_id": "12 34"},
        {"active": "maybe"},
    ],
)
async def test_invalid_officer_fields_are_422(
    client: httpx.AsyncClient, changes: dict[str, object]
) -> None:
    answer = await put_officer(client, "tranthib.vpdkdd", **changes)

    assert answer.status_code == 422


async def test_account_with_blank_edges_is_422(client: httpx.AsyncClient) -> None:
    answer = await put_officer(client, "%20tranthib")

    assert answer.status_code == 422


async def test_refused_key_writes_nothing(client: httpx.AsyncClient) -> None:
    refused = await client.put(
        "/api/v1/officers/tranthib.vpdkdd", json=OFFICER, headers=bearer(DESK_KEY)
    )

    assert refused.status_code == 403
    assert (await client.get("/api/v1/officers/tranthib.vpdkdd", headers=ADMIN)).status_code == 404


async def test_officer_list_filters_by_unit_role_and_activity(client: httpx.AsyncClient) -> None:
    await put_officer(client, "a.handler")
    await put_officer(client, "b.leader", role="leader")
    await put_officer(client, "c.gone", active=False)
    await put_officer(client, "d.elsewhere", unit_code="000.00.13.H08")

    async def accounts(**params: str) -> list[str]:
        answer = await client.get("/api/v1/officers", params=params, headers=ADMIN)
        assert answer.status_code == 200
        assert answer.json()["total"] == len(answer.json()["items"])
        return [item["account"] for item in answer.json()["items"]]

    assert await accounts() == ["a.handler", "b.leader", "c.gone", "d.elsewhere"]
    assert await accounts(unit=UNIT) == ["a.handler", "b.leader", "c.gone"]
    assert await accounts(role="handler", active="true") == ["a.handler", "d.elsewhere"]
    assert await accounts(active="false") == ["c.gone"]
    assert await accounts(unit=UNIT, role="leader") == ["b.leader"]


async def test_officer_list_refuses_an_unknown_role_filter(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/v1/officers", params={"role": "boss"}, headers=ADMIN)

    assert answer.status_code == 422


async def test_unknown_officer_is_404(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/v1/officers/nobody", headers=ADMIN)

    assert answer.status_code == 404
