"""What the reconcile benchmark measures a sweep with: SQL time by statement kind, chunk
durations, and the small queries on discrepancies and the schedule around each phase."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common.database import autocommit, fetch_all, scalar
from bench.common.figures import quantile
from services.reconciler import service
from services.reconciler.service import Judgement
from services.reconciler.worker import Reconciler
from shared.clock import system_clock
from shared.db import unit_of_work

SWEEP_TARGET_SECONDS = 30.0  # the full re-judgement (after a mass import)
SWEEP_TARGET = f"≤ {SWEEP_TARGET_SECONDS:.0f} s"


STATEMENT_LABELS = (
    ("FOR UPDATE SKIP LOCKED", "claim (SELECT … FOR UPDATE SKIP LOCKED)"),
    ("FROM dossier_status_seen", "lateness: ended late dossiers"),  # before "FROM dossiers"
    ("FROM progress_steps", "lateness: their steps"),
    ("INSERT INTO dossier_lateness", "lateness: store figures"),
    ("DELETE FROM dossier_lateness", "lateness: drop figures"),
    ("FROM dossiers", "load dossiers"),
    ("FROM field_reports", "load field_reports"),
    ("FROM discrepancies", "load unresolved discrepancies"),
    ("INSERT INTO discrepancies ", "insert discrepancies"),
    ("INSERT INTO discrepancy_history", "insert discrepancy_history"),
    ("UPDATE discrepancies", "update discrepancies"),
    ("DELETE FROM reconcile_schedule", "schedule: delete done"),
    ("UPDATE reconcile_schedule", "schedule: update next check"),
    ("INSERT INTO reconcile_schedule", "schedule: upsert next check"),
    ("SET LOCAL plan_cache_mode", "SET LOCAL plan_cache_mode (×2)"),
)


class SqlTimer:
    """Wall time of each statement (round trip, server work and asyncpg decoding), by kind.

    Hooks SQLAlchemy's cursor events; ORM row processing (type conversion of results) happens
    after ``after_cursor_execute`` and counts as Python. BEGIN and COMMIT are not statements
    here: they are in the "rest" of a chunk.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.stats: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
        self.active = True
        self._started: list[float] = []
        event.listen(engine.sync_engine, "before_cursor_execute", self._before)
        event.listen(engine.sync_engine, "after_cursor_execute", self._after)

    def reset(self) -> None:
        self.stats.clear()

    @staticmethod
    def label(statement: str) -> str:
        for needle, label in STATEMENT_LABELS:
            if needle in statement:
                return label
        return " ".join(statement.split())[:60]

    def _before(self, *_: Any) -> None:
        self._started.append(time.perf_counter())

    def _after(
        self,
        _conn: Any,
        _cursor: Any,
        statement: str,
        parameters: Any,
        _context: Any,
        executemany: bool,
    ) -> None:
        elapsed = time.perf_counter() - self._started.pop()
        if not self.active:
            return
        entry = self.stats[self.label(statement)]
        entry[0] += 1
        # an executemany runs once per parameter set; a multi-row VALUES (SQLAlchemy's
        # "insertmanyvalues", used with RETURNING) is one statement with flat parameters
        many = executemany and parameters and isinstance(parameters[0], list | tuple | dict)
        entry[1] += len(parameters) if many else 1
        entry[2] += elapsed

    def remove(self, engine: AsyncEngine) -> None:
        event.remove(engine.sync_engine, "before_cursor_execute", self._before)
        event.remove(engine.sync_engine, "after_cursor_execute", self._after)

    def total(self) -> float:
        return sum(seconds for _, _, seconds in self.stats.values())

    def table(self, per: int, wall: float, unit: str) -> list[str]:
        """``calls``: round trips (an executemany is one, pipelined); ``execs``: statements run."""
        lines = [
            f"    {'statement':<42} {'calls/' + unit:>11} {'execs/' + unit:>11} "
            f"{'ms/' + unit:>9} {'share':>6}"
        ]
        for label, (calls, rows, seconds) in sorted(self.stats.items(), key=lambda kv: -kv[1][2]):
            lines.append(
                f"    {label:<42} {calls / per:>11.1f} {rows / per:>11.1f} "
                f"{1000 * seconds / per:>9.1f} {100 * seconds / wall:>5.1f}%"
            )
        rest = wall - self.total()
        lines.append(
            f"    {'rest (Python, BEGIN/COMMIT, pool)':<42} {'':>11} {'':>11} "
            f"{1000 * rest / per:>9.1f} {100 * rest / wall:>5.1f}%"
        )
        return lines


class TimedChunks:
    """Wraps ``reconcile_chunk`` of one reconciler to keep each non-empty chunk's duration."""

    def __init__(self, reconciler: Reconciler) -> None:
        self.durations: list[float] = []
        original = reconciler.reconcile_chunk

        async def timed(on_chunk: Callable[[Judgement], None] | None = None) -> int:
            started = time.perf_counter()
            # Revisions before the ``on_chunk`` hook (d413e73) take no argument.
            count = await (original() if on_chunk is None else original(on_chunk))
            if count:
                self.durations.append(time.perf_counter() - started)
            return count

        reconciler.reconcile_chunk = timed  # type: ignore[method-assign]

    def summary(self) -> str:
        d = self.durations
        if not d:
            return "no chunk"
        tenth = max(1, len(d) // 10)
        deciles = " ".join(
            f"{1000 * statistics.fmean(d[i : i + tenth]):.0f}" for i in range(0, len(d), tenth)
        )
        return (
            f"{len(d)} chunks, median {1000 * statistics.median(d):.0f} ms, "
            f"p95 {1000 * quantile(d, 0.95):.0f} ms, max {1000 * max(d):.0f} ms; "
            f"mean ms by tenth of the sweep: {deciles}"
        )


# --------------------------------------------------------------------------- database helpers


async def reset_discrepancies(engine: AsyncEngine) -> None:
    """Back to "never judged": no discrepancy, no history, nothing scheduled."""
    async with unit_of_work(engine, "bench") as connection:
        await connection.execute(
            text("TRUNCATE discrepancies, discrepancy_history, alert_tracks, notifications")
        )
        await connection.execute(text("DELETE FROM reconcile_schedule"))
    await autocommit(engine, "VACUUM ANALYZE reconcile_schedule")


async def reschedule(engine: AsyncEngine) -> float:
    started = time.perf_counter()
    async with unit_of_work(engine, "bench") as connection:
        await service.reschedule_all(connection, now=system_clock())
    return time.perf_counter() - started


async def due_left(engine: AsyncEngine) -> bool:
    sql = "SELECT EXISTS (SELECT 1 FROM reconcile_schedule WHERE check_at <= now())"
    return bool(await scalar(engine, sql))


async def open_by_kind(engine: AsyncEngine) -> dict[str, int]:
    sql = "SELECT kind, count(*) FROM discrepancies WHERE status <> 'resolved' GROUP BY kind"
    return {kind: count for kind, count in await fetch_all(engine, sql)}


async def history_since(engine: AsyncEngine, since: datetime) -> dict[str, int]:
    sql = "SELECT action, count(*) FROM discrepancy_history WHERE at >= :since GROUP BY 1"
    return {action: count for action, count in await fetch_all(engine, sql, since=since)}


async def updated_since(engine: AsyncEngine, since: datetime) -> int:
    return int(
        await scalar(
            engine,
            "SELECT count(*) FROM discrepancies WHERE updated_at >= :since "
            "AND opened_at < :since AND resolved_at IS NULL",
            since=since,
        )
    )


def kind_table(found: dict[str, int], planted: dict[str, int]) -> tuple[bool, list[str]]:
    kinds = sorted(set(found) | set(planted), key=lambda k: (k not in planted, k))
    lines = [f"    {'kind':<22} {'planted':>9} {'open':>9}"]
    for kind in kinds:
        want, got = planted.get(kind, 0), found.get(kind, 0)
        lines.append(f"    {kind:<22} {want:>9,} {got:>9,}  {'ok' if want == got else '≠'}")
    ok = {k: v for k, v in found.items() if v} == planted
    lines.append(f"    {'total':<22} {sum(planted.values()):>9,} {sum(found.values()):>9,}")
    return ok, lines
