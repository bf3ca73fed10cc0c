"""The Zalo token pair in the zalo_tokens table, on both backends."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.alerts.channels.zalo import TokenState
from services.alerts.token_store import DatabaseTokenStore
from shared.models import ZaloToken
from tests.conftest import TEST_NOW
from tests.services.alerts.dispatch.conftest import MutableClock


async def test_round_trip_and_replace(engine: AsyncEngine, clock: MutableClock) -> None:
    store = DatabaseTokenStore(engine, "app-1", clock=clock)
    assert await store.load() is None

    first = TokenState("at-1", "rt-1", TEST_NOW + timedelta(hours=25))
    await store.save(first)
    assert await store.load() == first

    clock.advance(hours=24)
    second = TokenState("at-2", "rt-2", clock() + timedelta(hours=25))
    await store.save(second)
    assert await store.load() == second
    async with engine.connect() as connection:
        rows = (await connection.execute(select(ZaloToken))).all()
    assert [(row.app_id, row.refresh_token, row.updated_at) for row in rows] == [
        ("app-1", "rt-2", clock())
    ]


async def test_apps_do_not_share_tokens(engine: AsyncEngine, clock: MutableClock) -> None:
    one, two = DatabaseTokenStore(engine, "app-1"), DatabaseTokenStore(engine, "app-2")
    await one.save(TokenState("at-1", "rt-1", TEST_NOW))
    assert await two.load() is None


async def test_save_commits_even_when_the_callers_transaction_rolls_back(
    engine: AsyncEngine, clock: MutableClock
) -> None:
    """A rotated refresh token must survive the dispatcher batch that triggered the refresh."""
    store = DatabaseTokenStore(engine, "app-1", clock=clock)
    async with engine.connect() as outer:
        transaction = await outer.begin()
        await outer.execute(text("SELECT 1"))
        await store.save(TokenState("at-1", "rt-1", TEST_NOW))
        await transaction.rollback()
    async with engine.connect() as connection:
        count = (await connection.execute(select(func.count()).select_from(ZaloToken))).scalar()
    assert count == 1
    assert (await store.load()) == TokenState("at-1", "rt-1", TEST_NOW)
