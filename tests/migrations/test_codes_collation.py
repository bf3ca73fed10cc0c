"""Migration 0012: dossier codes and event ids compare byte by byte on PostgreSQL, and back."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from types import ModuleType

from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from shared import migrate
from shared.db import Base, create_engine

MIGRATION = next((Path(__file__).parents[2] / "migrations" / "versions").glob("*_0012_*.py"))
POSTGRESQL = postgresql.dialect()  # type: ignore[no-untyped-call]  # the dialect's __init__ is untyped


def migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("migration_0012", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def collations(url: str) -> dict[tuple[str, str], str | None]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT table_name, column_name, collation_name "
                    "FROM information_schema.columns WHERE table_schema = 'public'"
                )
            )
            return {(table, column): collation for table, column, collation in rows}
    finally:
        await engine.dispose()


def bytewise_columns(columns: dict[tuple[str, str], str | None]) -> set[tuple[str, str]]:
    return {key for key, collation in columns.items() if collation == "C"}


def test_the_models_declare_the_columns_the_migration_changes() -> None:
    declared = {
        (table.name, column.name)
        for table in Base.metadata.tables.values()
        for column in table.columns
        if getattr(column.type.dialect_impl(POSTGRESQL), "collation", None) == "C"
    }
    assert declared == {(table, column) for table, column, _ in migration().COLUMNS}


async def test_codes_and_ids_compare_bytewise_after_the_upgrade_and_not_after_the_downgrade(
    empty_pg_url: str,
) -> None:
    changed = {(table, column) for table, column, _ in migration().COLUMNS}
    await asyncio.to_thread(migrate.upgrade, empty_pg_url, "0011")
    assert bytewise_columns(await collations(empty_pg_url)) == set()

    await asyncio.to_thread(migrate.upgrade, empty_pg_url, "0012")
    assert bytewise_columns(await collations(empty_pg_url)) == changed

    await asyncio.to_thread(migrate.downgrade, empty_pg_url, "0011")
    assert bytewise_columns(await collations(empty_pg_url)) == set()
