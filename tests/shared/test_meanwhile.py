"""``shared.db.meanwhile``: a statement runs while Python computes, and a failure in between
never leaves the connection in the middle of a statement."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.db import meanwhile, unit_of_work


async def _scalar(connection: AsyncConnection, sql: str) -> Any:
    return (await connection.execute(text(sql))).scalar_one()


async def test_the_block_gets_the_statements_answer(engine: AsyncEngine) -> None:
    async with (
        unit_of_work(engine, "test") as connection,
        meanwhile(_scalar(connection, "SELECT 41 + 1")) as answer,
    ):
        computed = sum(range(1000))
        found = await answer
    assert (found, computed) == (42, 499500)


async def test_a_failing_block_raises_its_own_error_after_the_statement_finished(
    engine: AsyncEngine,
) -> None:
    finished: list[str] = []

    async def statement(connection: AsyncConnection) -> None:
        await _scalar(connection, "SELECT 1")
        finished.append("statement")

    async with unit_of_work(engine, "test") as connection:
        with pytest.raises(ZeroDivisionError):
            async with meanwhile(statement(connection)):
                _ = 1 / 0
        assert finished == ["statement"]
        # The connection is between statements again: the transaction goes on.
        assert await _scalar(connection, "SELECT 2") == 2


async def test_a_failing_statement_is_raised_where_its_answer_is_awaited(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        with pytest.raises(Exception, match="no_such_table"):
            async with meanwhile(_scalar(connection, "SELECT x FROM no_such_table")) as answer:
                await answer


async def test_when_both_fail_the_blocks_error_is_raised(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        with pytest.raises(KeyError):
            async with meanwhile(_scalar(connection, "SELECT x FROM no_such_table")):
                raise KeyError("the block's own")
