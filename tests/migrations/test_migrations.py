"""Migrations go up and down cleanly on both backends, and match the models exactly."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from shared import migrate
from shared.db import Base, create_engine
from tests.support import postgres


@pytest.fixture
async def empty_pg_url(pg_server: str) -> AsyncIterator[str]:
    name = f"doisoat_mig_{uuid.uuid4().hex[:10]}"
    await postgres.create_database(pg_server, name)
    yield postgres.database_url(pg_server, name)
    await postgres.drop_database(pg_server, name)


@pytest.fixture
def empty_sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_url(request: pytest.FixtureRequest) -> str:
    return cast(
        str,
        request.getfixturevalue(f"empty_{'pg' if request.param == 'postgresql' else 'sqlite'}_url"),
    )


async def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def differences(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            # alembic types compare_metadata as Any; it returns the list of differences.
            return cast(
                list[Any],
                await connection.run_sync(
                    lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
                ),
            )
    finally:
        await engine.dispose()


async def test_upgrade_downgrade_upgrade_round_trip(empty_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, empty_url)
    assert set(Base.metadata.tables) <= await tables(empty_url)
    await asyncio.to_thread(migrate.downgrade, empty_url)
    assert await tables(empty_url) <= {"alembic_version"}
    await asyncio.to_thread(migrate.upgrade, empty_url)
    assert set(Base.metadata.tables) <= await tables(empty_url)


async def test_migrated_schema_matches_the_models(empty_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, empty_url)
    assert await differences(empty_url) == []
