"""``GET /api/v1/notifications``: the outbox for admins, filtered by status."""

from __future__ import annotations

import httpx
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import unit_of_work
from shared.models import Notification
from tests.conftest import ADMIN_KEY, OFFICER_KEY, TEST_NOW, bearer


async def seed(engine: AsyncEngine, *statuses: str) -> None:
    async with unit_of_work(engine, "test") as connection:
        await connection.execute(
            insert(Notification),
            [
                {
                    "discrepancy_id": 1,
                    "purpose": "opened",
                    "severity": "critical",
                    "recipient": "an",
                    "channel": "email",
                    "address": "an@x.vn",
                    "unit_code": "U",
                    "content": {},
                    "status": state,
                    "not_before": TEST_NOW,
                    "attempts": 0,
                    "last_error": "smtp 550" if state == "dead" else None,
                    "created_at": TEST_NOW,
                }
                for state in statuses
            ],
        )


async def test_dead_notifications_are_listed_with_their_error(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await seed(engine, "pending", "sent", "dead", "dead")
    body = (await client.get("/api/v1/notifications?status=dead", headers=bearer(ADMIN_KEY))).json()
    assert body["total"] == 2
    assert {item["last_error"] for item in body["items"]} == {"smtp 550"}
    everything = (await client.get("/api/v1/notifications", headers=bearer(ADMIN_KEY))).json()
    assert everything["total"] == 4


async def test_only_admins_read_the_outbox_and_statuses_are_checked(
    client: httpx.AsyncClient,
) -> None:
    assert (
        await client.get("/api/v1/notifications", headers=bearer(OFFICER_KEY))
    ).status_code == 403
    assert (
        await client.get("/api/v1/notifications?status=lost", headers=bearer(ADMIN_KEY))
    ).status_code == 422
