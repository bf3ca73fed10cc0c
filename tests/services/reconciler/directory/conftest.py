"""The API with the directory router mounted, and a clock the tests can move forward."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.app.asgi import create_app
from tests.conftest import ADMIN_KEY, TEST_NOW, bearer, make_settings


@dataclass
class MovableClock:
    now: datetime = TEST_NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
async def client(
    engine: AsyncEngine, database_url: str, clock: MovableClock
) -> AsyncIterator[httpx.AsyncClient]:
    """Like the root ``client``, with a clock the test can move."""
    app = create_app(make_settings(database_url), engine=engine, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://doisoat.test") as http:
        yield http


ADMIN = bearer(ADMIN_KEY)
