"""Migration 0011 carries each dossier's date marks from their table onto its row, and back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from shared import migrate
from shared.date_marks import COLUMNS
from shared.db import create_engine

SEEN = datetime(2024, 10, 1, 1, 30, tzinfo=UTC)
DUE = datetime(2024, 10, 4, 10, 0, tzinfo=UTC)
FINISHED = datetime(2024, 10, 7, 2, 0, tzinfo=UTC)
MARKS: dict[str, datetime | None] = {
    "base_due_at": DUE,
    "base_seen_at": SEEN,
    "source_at": None,
    "source_due_at": None,
    "source_seen_at": None,
    "finished_max": FINISHED,
    "finished_seen_at": SEEN,
    "returned_max": None,
    "returned_seen_at": None,
}
WITH_MARKS, WITHOUT = "000.00.12.H08-241001-0001", "000.00.12.H08-241001-0002"


async def run(url: str, statement: str, parameters: dict[str, Any] | None = None) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(statement), parameters or {})
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


def as_utc(value: Any) -> Any:
    """SQLite hands back text or naive datetimes: compare instants."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


async def test_the_marks_move_onto_the_dossier_row_and_back(empty_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, empty_url, "0010")
    for code in (WITH_MARKS, WITHOUT):
        await run(empty_url, "INSERT INTO dossiers (code) VALUES (:code)", {"code": code})
    names = ", ".join(COLUMNS)
    await run(
        empty_url,
        f"INSERT INTO dossier_date_marks (dossier_code, {names}) "
        f"VALUES (:code, {', '.join(':' + name for name in COLUMNS)})",
        {"code": WITH_MARKS, **MARKS},
    )

    await asyncio.to_thread(migrate.upgrade, empty_url, "0011")
    rows = await run(empty_url, f"SELECT code, {names} FROM dossiers ORDER BY code")
    assert [(row[0], [as_utc(v) for v in row[1:]]) for row in rows] == [
        (WITH_MARKS, [MARKS[name] for name in COLUMNS]),
        (WITHOUT, [None] * len(COLUMNS)),
    ]

    await asyncio.to_thread(migrate.downgrade, empty_url, "0010")
    back = await run(empty_url, f"SELECT dossier_code, {names} FROM dossier_date_marks")
    assert [(row[0], [as_utc(v) for v in row[1:]]) for row in back] == [
        (WITH_MARKS, [MARKS[name] for name in COLUMNS])
    ]
