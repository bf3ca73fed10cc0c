"""What PostgreSQL makes of a code path: its statements captured, then each EXPLAIN ANALYZEd.

For a target a benchmark missed: the service's own read functions run once in the benchmark's
process, their statements and parameters are captured with SQLAlchemy's cursor events, and each
``SELECT`` is run again under ``EXPLAIN (ANALYZE, BUFFERS)`` with the same parameters. The sum
of the execution times against the wall time of the code path tells PostgreSQL's share from
Python's (row decoding, the service's own loops, the driver).
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.db import unit_of_work

_ARRAY = re.compile(r"'\{([^}]{60,})\}'")
_PARAMETERS = re.compile(r"(\$\d+::\w+(?:, )?){4,}")


def shortened(text: str) -> str:
    """A statement or plan line without its long lists: ``'{…104 values…}'``, ``$3…``."""
    text = _ARRAY.sub(lambda m: f"'{{…{m.group(1).count(',') + 1} values…}}'", text)
    return _PARAMETERS.sub(lambda m: m.group(0).split("::")[0] + "…", text)


@dataclass(frozen=True, slots=True)
class Plan:
    seconds: float  # the plan's "Execution Time"
    statement: str
    lines: list[str]

    def summary(self, width: int = 150) -> str:
        return shortened(" ".join(self.statement.split()))[:width]


@dataclass(frozen=True, slots=True)
class Explained:
    wall: float  # the code path, run once in this process
    statements: int
    plans: list[Plan]  # of its SELECTs, slowest first

    @property
    def database(self) -> float:
        return sum(plan.seconds for plan in self.plans)


async def explain_path(
    engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[object]]
) -> Explained:
    """Run ``work`` in one transaction of ``engine`` capturing its statements, then EXPLAIN
    (ANALYZE, BUFFERS) each ``SELECT`` with its parameters (reads only: nothing is written)."""
    captured: list[tuple[str, Any]] = []

    def keep(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", keep)
    try:
        async with unit_of_work(engine, "bench_explain") as connection:
            started = time.perf_counter()
            await work(connection)
            wall = time.perf_counter() - started
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", keep)
    plans = []
    async with engine.connect() as connection:
        for statement, parameters in captured:
            if statement.lstrip().upper().startswith("SELECT"):
                explain = "EXPLAIN (ANALYZE, BUFFERS) " + statement
                lines = [row[0] for row in await connection.exec_driver_sql(explain, parameters)]
                took = next(line for line in lines if line.startswith("Execution Time"))
                plans.append(Plan(float(took.split()[2]) / 1000, statement, lines))
        await connection.rollback()
    plans.sort(key=lambda plan: -plan.seconds)
    return Explained(wall, len(captured), plans)
