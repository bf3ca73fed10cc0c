"""Lateness benchmark: ``GET /api/v1/lateness`` for a province-month among a million dossiers.

1. a fresh migrated database seeded with COPY (``bench/common/province.py``): a province of
   ``--units`` units, ``--dossiers`` dossiers received over the last 365 days with their
   progress steps (``NgayKetThucTheoQuyDinh`` on most), a share late per field, apologies and
   explained extensions; then ``VACUUM (ANALYZE)``;
2. the real ASGI app (``create_app``, as ``doisoat api`` builds it) called in process through
   httpx's ``ASGITransport`` with an admin key: per ``group_by`` (unit, officer, field,
   procedure) ``--warm-up`` untimed then ``--requests`` timed requests for the month
   (``from``/``to``, every unit): p50, p95, max against the 500 ms target; the answer's
   ``total`` must equal the late dossiers seeded in that month. Twice: first with nothing
   stored (every late dossier computed, as before the figures were stored, and as right after
   an upgrade), then after the reconciler's figures are stored for every ended late dossier
   (``lateness.stored.store`` in chunks of 1,000, what the reconcilers' judging leaves
   behind); the answers must be equal, and both are printed side by side;
3. the service function alone (``lateness_service.lateness_by`` in one unit of work, what the
   route calls), ``--service-requests`` times per ``group_by``: the part HTTP does not add;
4. when a target is missed (or ``--explain always``): the path's statements EXPLAIN ANALYZEd
   (database time against wall time) and one call under cProfile (where Python spends it);
5. the database dropped (unless ``--keep-db``), also on Ctrl-C or SIGTERM.

Run from the repository root: ``.venv/bin/python bench/lateness.py --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import pstats
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

if __package__ in (None, ""):  # run as a script (``python bench/lateness.py``): find ``tests``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common.console import host_line, load_average, sigterm_as_interrupt
from bench.common.database import autocommit, postgres_summary, run_on_fresh_database
from bench.common.explain import explain_path, shortened
from bench.common.figures import Report, counts_text, quantile, target_verdict
from bench.common.province import Province, seed_province
from bench.common.sweep_diagnostics import profile_tables
from services.app.asgi import create_app
from services.reconciler.kpis.formulas import Period
from services.reconciler.lateness import reading
from services.reconciler.lateness import service as lateness_service
from services.reconciler.lateness import stored as lateness_stored
from shared.clock import VN_TZ, system_clock
from shared.config import ApiKey, BaseDoisoatSettings
from shared.db import create_engine, unit_of_work
from shared.directory import load_directory
from shared.dvcqg import OPEN_STATUSES as OPEN
from shared.models import Dossier

TARGET_SECONDS = 0.500
TARGET = f"p95 ≤ {1000 * TARGET_SECONDS:.0f} ms"
ROUTE = "/api/v1/lateness"
GROUPINGS = ("unit", "officer", "field", "procedure")
ADMIN_KEY = "bench-lateness-admin-0123456789"


def last_full_month(now: datetime) -> tuple[date, date]:
    """The month before ``now``'s (Vietnam dates): every dossier of it is due by now or soon."""
    first_this = now.astimezone(VN_TZ).date().replace(day=1)
    last = first_this - timedelta(days=1)
    return last.replace(day=1), last


def timing_line(name: str, durations: list[float], extra: str = "") -> tuple[str, float]:
    p50, p95 = statistics.median(durations), quantile(durations, 0.95)
    line = (
        f"    {name:<10} p50 {1000 * p50:>6.0f} ms, p95 {1000 * p95:>6.0f} ms, "
        f"max {1000 * max(durations):>6.0f} ms ({len(durations)} timed){extra}  "
        + target_verdict(p95 <= TARGET_SECONDS, TARGET)
    )
    return line, p95


async def over_http(
    engine: AsyncEngine,
    db_url: str,
    month: tuple[date, date],
    expected: int,
    report: Report,
    args: argparse.Namespace,
    *,
    figures: str,
    answers: dict[str, Any],
) -> list[str]:
    """The route through the ASGI app, per grouping, the answers kept in ``answers``; returns
    the groupings that missed. ``figures`` names the pass (computed or stored)."""
    settings = BaseDoisoatSettings(
        database_url=db_url,
        api_keys=[ApiKey(key=ADMIN_KEY, role="admin", account="quantri.bench")],
        _env_file=None,
    )
    app = create_app(settings, engine=engine, clock=lambda: args.now)
    if ROUTE not in app.openapi().get("paths", {}):
        report.add(f"(2) HTTP: {ROUTE} is not mounted in this tree: not measured")
        report.failures.append(f"{ROUTE} not mounted: HTTP not measured")
        return list(GROUPINGS)
    missed = []
    report.add(
        f"(2) {figures} figures: GET {ROUTE}?from={month[0]}&to={month[1]}&group_by=… "
        f"(admin key, every unit), {args.warm_up} warm-up + {args.requests} timed each, "
        f"load {load_average()}"
    )
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as client:
        for group_by in GROUPINGS:
            params = {"from": str(month[0]), "to": str(month[1]), "group_by": group_by}
            durations, answer = [], None
            for index in range(args.warm_up + args.requests):
                started = time.perf_counter()
                response = await client.get(ROUTE, params=params, headers=headers)
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    report.failures.append(f"{group_by}: HTTP {response.status_code}")
                    report.add(f"    {group_by}: HTTP {response.status_code} {response.text[:300]}")
                    break
                answer = response.json()
                if index >= args.warm_up:
                    durations.append(elapsed)
            if not durations or answer is None:
                missed.append(group_by)
                continue
            answers[group_by] = answer
            extra = f"; total {answer['total']:,}, {len(answer['items']):,} groups"
            line, p95 = timing_line(group_by, durations, extra)
            report.add(line)
            report.figures[f"http_{figures}_{group_by}_p50_ms"] = 1000 * statistics.median(
                durations
            )
            report.figures[f"http_{figures}_{group_by}_p95_ms"] = 1000 * p95
            if answer["total"] != expected:
                report.failures.append(f"{group_by}: total {answer['total']:,} ≠ {expected:,}")
            if p95 > TARGET_SECONDS:
                missed.append(group_by)
                if figures == "stored":  # the path a running service takes
                    report.failures.append(f"HTTP {group_by}: p95 {1000 * p95:.0f} ms")
    report.add()
    return missed


def service_call(
    month: tuple[date, date], now: datetime, group_by: Any, calendar: Any
) -> Callable[[AsyncConnection], Awaitable[lateness_service.LatenessReport]]:
    """What the route does inside its unit of work: the directory, then the report."""

    async def call(connection: AsyncConnection) -> lateness_service.LatenessReport:
        directory = await load_directory(connection)
        return await lateness_service.lateness_by(
            connection,
            period=Period(month[0], month[1], as_of=now),
            units=None,
            group_by=group_by,
            now=now,
            calendar=calendar,
            directory=directory,
        )

    return call


async def service_alone(
    engine: AsyncEngine, month: tuple[date, date], report: Report, args: argparse.Namespace
) -> None:
    calendar = BaseDoisoatSettings(_env_file=None).calendar()
    report.add(
        f"(3) the service alone (lateness_by in one unit of work), {args.service_requests} "
        f"timed each after one warm-up, load {load_average()}"
    )
    for group_by in GROUPINGS:
        durations = []
        for index in range(1 + args.service_requests):
            call = service_call(month, args.now, group_by, calendar)
            started = time.perf_counter()
            async with unit_of_work(engine, "bench_lateness") as connection:
                answer = await call(connection)
            if index:
                durations.append(time.perf_counter() - started)
        extra = f"; total {answer.total:,}, {len(answer.items):,} groups"
        line, p95 = timing_line(group_by, durations, extra)
        report.add(line)
        report.figures[f"service_{group_by}_p95_ms"] = 1000 * p95
    report.add()


async def diagnose(
    engine: AsyncEngine, month: tuple[date, date], report: Report, now: datetime
) -> None:
    """Where one call's time goes: each SELECT EXPLAIN ANALYZEd, then cProfile of the call."""
    calendar = BaseDoisoatSettings(_env_file=None).calendar()
    call = service_call(month, now, "officer", calendar)
    explained = await explain_path(engine, call)
    report.add(
        f"(4) one call (group_by=officer): wall {1000 * explained.wall:.0f} ms, "
        f"{explained.statements} statements, PostgreSQL's execution time of its SELECTs "
        f"{1000 * explained.database:.0f} ms (the rest: Python, the driver, row decoding)"
    )
    for plan in explained.plans[:3]:
        report.add(f"    {1000 * plan.seconds:.0f} ms  {plan.summary()}")
        for line in plan.lines[:18]:
            report.add(f"        {shortened(line)[:150]}")
    profiler = cProfile.Profile()
    started = time.perf_counter()
    async with unit_of_work(engine, "bench_lateness") as connection:
        profiler.enable()
        await call(connection)
        profiler.disable()
    report.add(f"    under cProfile: {1000 * (time.perf_counter() - started):.0f} ms")
    for line in profile_tables(pstats.Stats(profiler), 1, top=15)[:40]:
        report.add(line.replace("per chunk", "per call").replace("calls/ch", "calls"))
    report.add()


async def store_figures(engine: AsyncEngine, report: Report, now: datetime) -> None:
    """What the reconcilers' judging leaves behind: each ended late dossier's figures stored
    (``lateness.stored.store``, as ``reconcile`` calls it), 1,000 dossiers a transaction."""
    calendar = BaseDoisoatSettings(_env_file=None).calendar()
    started = time.perf_counter()
    async with engine.connect() as connection:
        codes = list(
            (
                await connection.execute(
                    select(Dossier.code).where(
                        reading.maybe_late(now), Dossier.status.not_in(sorted(OPEN))
                    )
                )
            ).scalars()
        )
    stored = 0
    for first in range(0, len(codes), 1000):
        async with unit_of_work(engine, "bench_lateness_store") as connection:
            stored += await lateness_stored.store(
                connection, codes[first : first + 1000], now=now, calendar=calendar
            )
    await autocommit(engine, "VACUUM (ANALYZE) dossier_lateness")
    seconds = time.perf_counter() - started
    report.add(
        f"stored the figures of {stored:,} ended late dossiers ({len(codes):,} candidates) in "
        f"{seconds:.1f} s ({1e6 * seconds / max(stored, 1):.0f} µs each), load {load_average()}"
    )
    report.figures |= {"stored_dossiers": stored, "store_seconds": seconds}
    report.add()


def side_by_side(report: Report) -> None:
    """The two passes of (2), p50 / p95 per grouping."""
    report.add("side by side, HTTP p50 / p95 (ms):   computed        stored   target p95")
    for group_by in GROUPINGS:
        cells = [
            f"{report.figures.get(f'http_{figures}_{group_by}_p50_ms', float('nan')):6.0f} / "
            f"{report.figures.get(f'http_{figures}_{group_by}_p95_ms', float('nan')):4.0f}"
            for figures in ("computed", "stored")
        ]
        report.add(f"    {group_by:<31}{cells[0]}   {cells[1]}   ≤ {1000 * TARGET_SECONDS:.0f}")
    report.add()


def seeded_lines(province: Province, month: tuple[date, date]) -> tuple[int, list[str]]:
    key = f"{month[0]:%Y-%m}"
    received = province.received_by_month.get(key, 0)
    late = province.late_by_month.get(key, 0)
    share = 100 * late / received if received else 0.0
    return late, [
        f"seeded in {province.seconds:.0f} s: " + counts_text(sorted(province.counts.items())),
        f"month {key}: {received:,} dossiers received, {late:,} late ({share:.1f} %)",
    ]


async def run(args: argparse.Namespace, db_url: str, report: Report) -> None:
    # One moment for the whole run, the seeding's: an open dossier's lateness grows with the
    # clock, so the seeded count and the two passes' answers are compared at the same now.
    now = args.now = system_clock()
    report.add(host_line())
    report.add(f"seeding a province: {args.units} units, {args.dossiers:,} dossiers over a year …")
    calendar = BaseDoisoatSettings(_env_file=None).calendar()
    province = await seed_province(
        db_url,
        args.dossiers,
        random.Random(args.seed),
        calendar,
        now=now,
        units=args.units,
        land_late=args.land_late,
        other_late=args.other_late,
    )
    month = args.month or last_full_month(now)
    expected, lines = seeded_lines(province, month)
    for line in lines:
        report.add(line)
    engine = create_engine(db_url)
    try:
        started = time.perf_counter()
        await autocommit(engine, "VACUUM (ANALYZE)")
        report.add(f"VACUUM (ANALYZE) {time.perf_counter() - started:.0f} s")
        settings = ("shared_buffers", "work_mem", "jit", "autovacuum")
        report.add("PostgreSQL " + await postgres_summary(engine, settings))
        report.figures |= {"load_at_start": load_average(), "late_in_month": expected}
        report.add()
        computed: dict[str, Any] = {}
        if not args.skip_computed:
            await over_http(
                engine, db_url, month, expected, report, args, figures="computed", answers=computed
            )
        await store_figures(engine, report, now)
        answers: dict[str, Any] = {}
        missed = await over_http(
            engine, db_url, month, expected, report, args, figures="stored", answers=answers
        )
        for group_by, answer in computed.items():
            if answers.get(group_by) != answer:
                report.failures.append(f"{group_by}: stored figures answer differently")
        side_by_side(report)
        await service_alone(engine, month, report, args)
        if args.explain == "always" or (args.explain == "auto" and missed):
            await diagnose(engine, month, report, now)
    finally:
        await engine.dispose()


def month_of(value: str) -> tuple[date, date]:
    first = date.fromisoformat(f"{value}-01")
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--dossiers", type=int, default=1_000_000, help="over the year")
    parser.add_argument("--units", type=int, default=60, help="units of the province")
    parser.add_argument("--land-late", type=float, default=0.25, help="late share, Đất đai")
    parser.add_argument("--other-late", type=float, default=0.05, help="late share, elsewhere")
    parser.add_argument("--month", type=month_of, default=None, help="YYYY-MM (last full one)")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per group_by")
    parser.add_argument("--warm-up", type=int, default=2, help="untimed requests first")
    parser.add_argument("--service-requests", type=int, default=5, help="service calls timed")
    parser.add_argument("--explain", choices=("auto", "always", "never"), default="auto")
    parser.add_argument(
        "--skip-computed", action="store_true", help="no pass before the figures are stored"
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    parser.add_argument("--seed", type=int, default=20261206, help="random seed")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="the figures")
    args = parser.parse_args(argv)
    if args.dossiers < 1000 or args.requests < 1:
        parser.error("--dossiers must be at least 1000 and --requests at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sigterm_as_interrupt()
    report = Report()
    status = run_on_fresh_database(
        lambda db_url: asyncio.run(run(args, db_url, report)),
        prefix="bench_lateness",
        keep_db=args.keep_db,
        report=report,
    )
    if args.json is not None:
        figures = {**report.figures, "failures": report.failures, "exit_status": status}
        args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False))
    return status


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
