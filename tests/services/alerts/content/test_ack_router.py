"""``GET /ack/{token}`` shows and changes nothing; ``POST`` acknowledges as the token's account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import fixed_clock
from shared.db import unit_of_work
from shared.models import Discrepancy, DiscrepancyHistory, Dossier, Unit
from shared.vocabulary import Kind
from tests.conftest import TEST_NOW
from tests.services.alerts.content.conftest import (
    APPLICANT,
    BASE_URL,
    CODE,
    HANDLER,
    ID_NUMBER,
    UNIT,
    UNIT_NAME,
    ack_links,
    discrepancy,
    dossier,
)

LEADER = "nguyenvanc.lanhdao"


async def seed(engine: AsyncEngine, **overrides: Any) -> int:
    """A unit, a dossier and one open RETURNED_BUT_OPEN discrepancy about it."""
    row = discrepancy(Kind.RETURNED_BUT_OPEN, **overrides)
    del row["id"]
    async with unit_of_work(engine, "test") as connection:
        await connection.execute(
            insert(Unit).values(
                code=UNIT, name=UNIT_NAME, parent_code=None, replaced_by=None, updated_at=TEST_NOW
            )
        )
        await connection.execute(insert(Dossier).values(dossier()))
        return (
            await connection.execute(insert(Discrepancy).values(row).returning(Discrepancy.id))
        ).scalar_one()


async def stored(engine: AsyncEngine, ident: int) -> Any:
    async with engine.connect() as connection:
        return (await connection.execute(select(Discrepancy).where(Discrepancy.id == ident))).one()


async def history(engine: AsyncEngine, ident: int) -> list[Any]:
    async with engine.connect() as connection:
        query = select(DiscrepancyHistory).where(DiscrepancyHistory.discrepancy_id == ident)
        return list((await connection.execute(query)).all())


def path(ident: int, account: str = HANDLER) -> str:
    return ack_links().url_for(ident, account).removeprefix(BASE_URL)


async def test_get_shows_what_would_be_acknowledged(
    ack_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    ident = await seed(engine)
    answer = await ack_client.get(path(ident))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    page = answer.text
    for shown in (CODE, UNIT_NAME, "Đã trả kết quả nhưng hệ thống chưa cập nhật", "Nghiêm trọng"):
        assert shown in page
    assert "Chưa xác nhận" in page and "Đang xử lý" in page
    assert "11:15 ngày 06/11/2024" in page  # since
    assert '<form method="post"' in page


async def test_get_changes_nothing(ack_client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    ident = await seed(engine)
    for _ in range(3):  # a mail scanner, a link preview, the officer
        assert (await ack_client.get(path(ident))).status_code == 200
    row = await stored(engine, ident)
    assert (row.status, row.acknowledged_by, row.acknowledged_at) == ("open", None, None)
    assert await history(engine, ident) == []


async def test_the_page_keeps_personal_data_out(
    ack_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    ident = await seed(engine)
    page = (await ack_client.get(path(ident))).text
    assert APPLICANT not in page and ID_NUMBER not in page


async def test_the_page_is_neither_cached_nor_leaking_its_address(
    ack_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    ident = await seed(engine)
    answer = await ack_client.get(path(ident))
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["referrer-policy"] == "no-referrer"


async def test_post_acknowledges_as_the_tokens_account(
    ack_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    ident = await seed(engine)
    answer = await ack_client.post(path(ident, LEADER))
    assert answer.status_code == 200
    assert "Đã xác nhận" in answer.text and LEADER in answer.text
    row = await stored(engine, ident)
    assert (row.status, row.acknowledged_by, row.acknowledged_at) == (
        "acknowledged",
        LEADER,
        TEST_NOW,
    )
    [entry] = await history(engine, ident)
    assert (entry.action, entry.actor) == ("acknowledged", LEADER)


async def test_a_second_post_says_it_was_already_acknowledged(
    ack_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    ident = await seed(engine)
    await ack_client.post(path(ident, HANDLER))
    answer = await ack_client.post(path(ident, LEADER))
    assert answer.status_code == 200
    assert "đã được tài khoản" in answer.text and HANDLER in answer.text
    assert (await stored(engine, ident)).acknowledged_by == HANDLER
    assert len(await history(engine, ident)) == 1


async def test_a_resolved_discrepancy_is_a_conflict(
    ack_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    ident = await seed(
        engine,
        status="resolved",
        resolved_at=TEST_NOW - timedelta(hours=1),
        resolution="Tự động đóng: điều kiện không còn đúng.",
    )
    answer = await ack_client.post(path(ident))
    assert answer.status_code == 409
    assert "đã được giải quyết" in answer.text
    row = await stored(engine, ident)
    assert (row.status, row.acknowledged_by) == ("resolved", None)


async def test_an_expired_link_is_gone(ack_client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    ident = await seed(engine)
    long_ago = ack_links(fixed_clock(datetime.now(UTC) - timedelta(days=8)))
    answer = await ack_client.post(long_ago.url_for(ident, HANDLER).removeprefix(BASE_URL))
    assert answer.status_code == 410
    assert "hết hạn" in answer.text
    assert (await stored(engine, ident)).status == "open"


async def test_a_broken_link_is_a_bad_request(
    ack_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    ident = await seed(engine)
    answer = await ack_client.post(path(ident)[:-4])
    assert answer.status_code == 400
    assert "không hợp lệ" in answer.text
    assert (await stored(engine, ident)).status == "open"


async def test_an_unknown_discrepancy_is_not_found(ack_client: httpx.AsyncClient) -> None:
    for method in ("GET", "POST"):
        answer = await ack_client.request(method, path(987654))
        assert answer.status_code == 404
        assert "Không tìm thấy" in answer.text


async def test_get_of_an_acknowledged_one_says_by_whom_and_offers_no_form(
    ack_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    ident = await seed(engine)
    await ack_client.post(path(ident, HANDLER))
    answer = await ack_client.get(path(ident, LEADER))
    assert answer.status_code == 200
    assert "Đã được xác nhận trước đó" in answer.text and HANDLER in answer.text
    assert "<form" not in answer.text
