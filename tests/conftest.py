"""Fixtures on real services: PostgreSQL (own database per test), SQLite, the tansu Kafka broker,
and the local peers of the alerts (an SMTP server, a server speaking the Zalo API)."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.app.asgi import create_app
from shared import migrate
from shared.clock import fixed_clock
from shared.config import ApiKey, BaseDoisoatSettings
from shared.db import create_engine
from tests.fakes.smtp_server import FakeSmtpServer
from tests.fakes.zalo_server import FakeZaloServer, running_fake_zalo
from tests.support import postgres
from tests.support.broker import Broker

BACKENDS = ("postgresql", "sqlite")
TEST_NOW = datetime(2024, 11, 6, 3, 0, tzinfo=UTC)

ADMIN_KEY = "admin-key-0123456789abcdef"
SOURCE_KEY = "source-key-0123456789abcdef"
OTHER_SOURCE_KEY = "source-key-other-0123456789"
DESK_KEY = "desk-key-0123456789abcdef"
OFFICER_KEY = "officer-key-0123456789abcdef"
TEST_KEYS = [
    ApiKey(key=ADMIN_KEY, role="admin", account="quantri"),
    ApiKey(key=SOURCE_KEY, role="source", units=["000.00.12.H08"], account="motcua-tinh"),
    ApiKey(key=OTHER_SOURCE_KEY, role="source", units=["000.00.99.H08"], account="khac"),
    ApiKey(key=DESK_KEY, role="desk", units=["000.00.12.H08"], account="lethic.motcua"),
    ApiKey(key=OFFICER_KEY, role="officer", units=["000.00.12.H08"], account="tranthib.vpdkdd"),
]


@pytest.fixture(scope="session")
def pg_server() -> str:
    return postgres.server_url()


@pytest.fixture(scope="session")
async def pg_template(pg_server: str) -> AsyncIterator[str]:
    """A migrated database that every PostgreSQL test database is cloned from."""
    name = f"doisoat_template_{uuid.uuid4().hex[:8]}"
    await postgres.create_database(pg_server, name)
    await asyncio.to_thread(migrate.upgrade, postgres.database_url(pg_server, name))
    yield name
    await postgres.drop_database(pg_server, name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
async def pg_database_url(pg_server: str, pg_template: str) -> AsyncIterator[str]:
    name = f"doisoat_test_{uuid.uuid4().hex[:12]}"
    await postgres.create_database(pg_server, name, template=pg_template)
    yield postgres.database_url(pg_server, name)
    await postgres.drop_database(pg_server, name)


@pytest.fixture
def sqlite_database_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "doisoat.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """The same test on PostgreSQL (the reference) and SQLite (the embedded default)."""
    fixture = "pg_database_url" if request.param == "postgresql" else "sqlite_database_url"
    return cast(str, request.getfixturevalue(fixture))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    built = create_engine(database_url)
    yield built
    await built.dispose()


@pytest.fixture
async def pg_engine(pg_database_url: str) -> AsyncIterator[AsyncEngine]:
    built = create_engine(pg_database_url)
    yield built
    await built.dispose()


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    started = Broker()
    started.start()
    yield started
    started.stop()


@pytest.fixture
def smtp_relay() -> Iterator[FakeSmtpServer]:
    """A real SMTP server on loopback (aiosmtpd) that records every message it accepts."""
    server = FakeSmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def zalo_api() -> Iterator[FakeZaloServer]:
    """An HTTP server on loopback speaking Zalo's token, OA message and ZNS APIs."""
    with running_fake_zalo() as server:
        yield server


def make_settings(database_url: str, **overrides: Any) -> BaseDoisoatSettings:
    return BaseDoisoatSettings(
        database_url=database_url, api_keys=TEST_KEYS, _env_file=None, **overrides
    )


@pytest.fixture
async def client(engine: AsyncEngine, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP API in-process over ASGI, with the test keys and a fixed clock."""
    app = create_app(make_settings(database_url), engine=engine, clock=fixed_clock(TEST_NOW))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://doisoat.test") as http:
        yield http


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
