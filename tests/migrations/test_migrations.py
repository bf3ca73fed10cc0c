"""Migrations go up and down cleanly on both backends, and match the models exactly."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from shared import migrate
from shared.db import Base, create_engine


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
