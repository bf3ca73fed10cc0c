"""Why a sweep is as fast as it is: the plans its session cached, one chunk under cProfile,
and py-spy's view of the reconciler processes."""

from __future__ import annotations

import cProfile
import json
import pstats
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common.console import load_average
from bench.common.figures import Report
from bench.common.planted import Seeded, code_of
from bench.common.pyspy import PY_SPY_RATE, read_stacks, short_path
from bench.common.sweeps import (
    STATEMENT_LABELS,
    SqlTimer,
    open_by_kind,
    reschedule,
    reset_discrepancies,
)
from services.reconciler.config import ReconcilerSettings
from services.reconciler.worker import Reconciler
from shared.clock import system_clock
from tests.support.postgres import asyncpg_dsn


def _json(value: Any) -> Any:
    """EXPLAIN's JSON: text from a plain asyncpg connection, decoded on SQLAlchemy's."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _plan_summary(plan: Any) -> str:
    """One line: the nodes of an EXPLAIN (ANALYZE, FORMAT JSON) tree and the execution time."""
    root = plan[0] if isinstance(plan, list) else plan
    nodes: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        label = node["Node Type"]
        if "Relation Name" in node:
            label += f" on {node['Relation Name']}"
        if "Index Name" in node:
            label += f" using {node['Index Name']}"
        removed = node.get("Rows Removed by Filter") or node.get("Rows Removed by Index Recheck")
        if removed:
            label += f" (filter removed {removed:,} rows)"
        nodes.append(label)
        for child in node.get("Plans", ()):
            walk(child)

    walk(root["Plan"])
    triggers = "".join(
        f"; trigger {t['Trigger Name'][:24]}… {t['Time']:.1f} ms / {t['Calls']} calls"
        for t in root.get("Triggers", ())
    )
    return f"{' → '.join(nodes)}: {root['Execution Time']:.1f} ms{triggers}"


async def plan_diagnostics(
    engine: AsyncEngine, db_url: str, seeded: Seeded, report: Report
) -> None:
    """Plans the sweep's own connection has cached, against the same statements planned fresh.

    asyncpg prepares every statement; PostgreSQL switches a prepared statement to a generic plan
    after five executions when it looks no dearer, and keeps it. A plan chosen while the
    discrepancy table was empty is still used when it holds tens of thousands of rows.
    """
    codes = [code_of(number) for number in range(min(1000, seeded.codes))]
    report.add("    plans cached on the sweep's pooled connection (pg_prepared_statements):")
    fresh = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            pg = raw.driver_connection
            assert pg is not None
            prepared = await pg.fetch(
                "SELECT name, statement, generic_plans, custom_plans "
                "FROM pg_prepared_statements WHERE NOT from_sql"
            )
            busiest: dict[str, Any] = {}
            for row in prepared:
                label = SqlTimer.label(row["statement"])
                executions = row["generic_plans"] + row["custom_plans"]
                if label in dict(STATEMENT_LABELS).values() and executions > (
                    busiest[label]["generic_plans"] + busiest[label]["custom_plans"]
                    if label in busiest
                    else -1
                ):
                    busiest[label] = row
            for label, row in sorted(busiest.items()):
                report.add(
                    f"      {label:<40} generic plans {row['generic_plans']:>5}, "
                    f"custom plans {row['custom_plans']:>5}"
                )
            load = busiest.get("load unresolved discrepancies")
            if load is not None:
                # One text[] parameter: the codes of a chunk, as an array literal.
                array = ",".join('"' + code.replace('"', '\\"') + '"' for code in codes[:1000])
                literals = "'{" + array.replace("'", "''") + "}'"
                cached = await pg.fetchval(
                    f'EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE "{load["name"]}"({literals})'
                )
                report.add("    load unresolved discrepancies, 1,000 codes:")
                report.add(
                    f"      {'cached plan, sweep session:':<28} {_plan_summary(_json(cached))}"
                )
                # The same statement on a fresh session, each way PostgreSQL may plan it; then
                # with the statistics autovacuum's ANALYZE would give the planner (autovacuum
                # is off on some test servers), in a transaction rolled back so that the rest
                # of the benchmark sees the tables as they were.
                # (EXPLAIN of a statement with bound parameters always plans it custom: hence
                # PREPARE … EXECUTE.)
                transaction = fresh.transaction()
                await transaction.start()
                try:
                    await fresh.execute(f"PREPARE bench_load AS {load['statement']}")
                    for analyzed in (False, True):
                        if analyzed:
                            await fresh.execute("ANALYZE discrepancies")
                        for mode in ("generic", "custom"):
                            await fresh.execute(f"SET LOCAL plan_cache_mode = force_{mode}_plan")
                            plan = await fresh.fetchval(
                                f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE bench_load({literals})"
                            )
                            what = f"{mode} plan{' after ANALYZE' if analyzed else ''}:"
                            report.add(f"      {what:<28} {_plan_summary(_json(plan))}")
                finally:
                    await transaction.rollback()
            history = (
                "EXPLAIN (ANALYZE, FORMAT JSON) INSERT INTO discrepancy_history "
                "(discrepancy_id, at, action) SELECT id, now(), 'bench' FROM discrepancies "
                "ORDER BY id DESC LIMIT 50"
            )
            report.add("    insert 50 history rows (rolled back), foreign key checked per row:")
            for name, pg_connection in (("sweep's connection", pg), ("fresh connection", fresh)):
                transaction = pg_connection.transaction()
                await transaction.start()
                try:
                    plan = await pg_connection.fetchval(history)
                finally:
                    await transaction.rollback()
                report.add(f"      {name}: {_plan_summary(_json(plan))}")
    finally:
        await fresh.close()


async def profile_chunk(
    engine: AsyncEngine,
    db_url: str,
    seeded: Seeded,
    report: Report,
    *,
    chunks: int,
    output: Path | None,
) -> None:
    """cProfile of ``chunks`` default-size chunks of a first sweep, after one warm-up chunk."""
    await reset_discrepancies(engine)
    await reschedule(engine)
    settings = ReconcilerSettings(database_url=db_url)
    reconciler = Reconciler(settings, engine, system_clock)
    # Half a first sweep, unprofiled: the chunk profiled sees the tables as a sweep does midway.
    before = max(1, seeded.codes // settings.reconcile_chunk_size // 2)
    started = time.perf_counter()
    for _ in range(before):
        await reconciler.reconcile_chunk()
    halfway = time.perf_counter() - started
    opened = sum((await open_by_kind(engine)).values())
    timer = SqlTimer(engine)
    report.add(
        f"profile: {chunks} chunk(s) of {settings.reconcile_chunk_size} in the middle of a first "
        f"sweep ({seeded.dossier_rows:,} dossier rows; after {before} chunks taking "
        f"{halfway:.1f} s, {opened:,} discrepancies open), load {load_average()}"
    )
    # Unprofiled first, for the statement split without the profiler's overhead.
    started = time.perf_counter()
    for _ in range(chunks):
        await reconciler.reconcile_chunk()
    plain = time.perf_counter() - started
    report.add(f"    without profiler: {1000 * plain / chunks:.0f} ms per chunk")
    for line in timer.table(chunks, plain, "chunk"):
        report.add(line)
    timer.remove(engine)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(chunks):
        await reconciler.reconcile_chunk()
    profiler.disable()
    profiled = time.perf_counter() - started
    report.add(f"    with cProfile: {1000 * profiled / chunks:.0f} ms per chunk")
    stats = pstats.Stats(profiler)
    if output is not None:
        stats.dump_stats(output)
        report.add(f"    pstats written to {output}")
    for line in profile_tables(stats, chunks):
        report.add(line)
    report.add()


# ------------------------------------------------------------------------------ profile views


def _area(filename: str, name: str) -> str:
    where = short_path(filename, stdlib_names=True)
    if where == "builtins":
        if "epoll" in name:
            return "epoll wait (idle: PostgreSQL working)"
        if "socket" in name:
            return "socket send/recv (C)"
        if "datetime" in name or "date'" in name:
            return "datetime methods (C)"
        return "other builtins (C: dict, str, round, …)"
    if where.startswith("stdlib/"):
        stdlib = where.removeprefix("stdlib/")
        if stdlib in ("base_events.py", "selector_events.py", "events.py", "selectors.py"):
            return "asyncio event loop"
        return "stdlib (Python)"
    if where.startswith(("services/", "shared/")):
        return where
    return where.split("/", 1)[0]


def profile_tables(stats: pstats.Stats, chunks: int, top: int = 25) -> list[str]:
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_, _, tt, _, _) in entries.values())
    by_area: Counter[str] = Counter()
    for (filename, _, name), (_, _, tt, _, _) in entries.items():
        by_area[_area(filename, name)] += tt
    lines = [f"    self time by area (ms per chunk; total {1000 * total / chunks:.0f}):"]
    for area, seconds in by_area.most_common(14):
        lines.append(
            f"      {1000 * seconds / chunks:>8.1f}  {100 * seconds / total:>5.1f}%  {area}"
        )

    def row(key: tuple[str, int, str], value: tuple[int, int, float, float, Any]) -> str:
        filename, line, name = key
        _, calls, tt, ct, _ = value
        return (
            f"      {calls / chunks:>9.0f} {1000 * tt / chunks:>8.1f} {1000 * ct / chunks:>8.1f}"
            f"  {short_path(filename, stdlib_names=True)}:{line}({name})"
        )

    header = f"      {'calls/ch':>9} {'self ms':>8} {'cum ms':>8}  function"
    lines.append(f"    top {top} functions by self time (per chunk):")
    lines.append(header)
    for key, value in sorted(entries.items(), key=lambda kv: -kv[1][2])[:top]:
        lines.append(row(key, value))
    lines.append(f"    top {top} project functions by cumulative time (per chunk):")
    lines.append(header)
    project = [
        (key, value)
        for key, value in entries.items()
        if short_path(key[0], stdlib_names=True).startswith(("services/", "shared/"))
    ]
    for key, value in sorted(project, key=lambda kv: -kv[1][3])[:top]:
        lines.append(row(key, value))
    return lines


def py_spy_summary(files: Sequence[Path], wall: float, top: int = 20) -> list[str]:
    """Self and inclusive samples by function from py-spy's raw (collapsed stack) output."""
    stacks = read_stacks(files, stdlib_names=True)
    if not stacks.total:
        return ["    py-spy: no samples"]
    busy = stacks.total / (PY_SPY_RATE * wall * len(files)) if files else 0.0
    lines = [
        f"    py-spy: {stacks.total:,} non-idle samples at {PY_SPY_RATE} Hz over {len(files)} "
        f"process(es): busy ≈ {100 * busy:.0f} % of the wall time; raw stacks in "
        f"{files[0].parent}",
        f"    top {top} by self samples:",
    ]
    lines += stacks.ranked(stacks.own.most_common(top), "      ")
    lines.append(f"    top {top} project functions by inclusive samples:")
    project = [
        (frame, n)
        for frame, n in stacks.inclusive.most_common()
        if frame.startswith(("services/", "shared/"))
    ]
    lines += stacks.ranked(project[:top], "      ")
    return lines
