"""Workspace benchmark: the officers' pages over a province of a million dossiers, on PostgreSQL.

1. a fresh migrated database seeded with COPY, then ``VACUUM (ANALYZE)``: a province and 100
   units under it (sizes skewed; three merged old codes), a desk officer, handlers and a leader
   per unit and a province leader; ``--dossiers`` dossiers received over the last 12 months
   (outcomes, due dates, fields, procedures, snapshots), desk reports for 40 % of the returned
   ones, ``--discrepancies`` unresolved discrepancies of seven kinds (their dossiers' facts
   shaped to match) and ``--resolved`` resolved ones, with history and notifications; events
   and progress steps for every dossier with an unresolved discrepancy, long stories for a few;
2. ``doisoat api`` as its own process; officers sign in as a browser does (a link made with
   ``services.workspace.sessions``, then its POST; the cookie kept);
3. per page ``--warm-up`` untimed then ``--requests`` timed requests, one at a time: median,
   p95, max, a verdict (pages p95 ≤ 300 ms, badges p95 ≤ 50 ms), then ``badge_counts`` alone;
4. for a missed target (``--explain always``: every page) the page's reads in this process,
   each statement EXPLAIN ANALYZEd, the slowest plan printed;
5. the server stopped and the database dropped (unless ``--keep-db``), also on Ctrl-C/SIGTERM.

Run from the repository root: ``.venv/bin/python bench/workspace.py --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

if __package__ in (None, ""):  # run as a script (``python bench/workspace.py``): find ``tests``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common.console import host_line, load_average, sigterm_as_interrupt
from bench.common.database import postgres_summary, run_on_fresh_database
from bench.common.explain import explain_path, shortened
from bench.common.figures import Report, counts_text, mib, quantile, target_verdict
from bench.common.sampling import ProcessSampler
from bench.common.workspace_seeding import PROVINCE, PROVINCE_LEADER, Seeder, seed
from services.alerts.service import notifications_of_dossier
from services.reconciler import queries
from services.reconciler.config import ReconcilerSettings
from services.reconciler.dossiers.service import story_of
from services.reconciler.kpis import review, stored
from services.reconciler.kpis.formulas import IsoWeek, month_so_far
from services.reconciler.kpis.service import Scope
from services.workspace import sessions
from services.workspace.config import WorkspaceSettings
from services.workspace.pages import board_lateness as lateness
from shared.clock import VN_TZ, system_clock
from shared.db import create_engine, unit_of_work
from shared.directory import Directory, load_directory
from tests.support.processes import ServiceProcess, start_service

PAGE_TARGET, BADGE_TARGET = 0.300, 0.050


# ------------------------------------------------------------------------------ measuring

Work = Callable[[AsyncConnection], Awaitable[None]]


@dataclass
class Probe:
    """One page (or the badges) as one officer asks for it, and its target."""

    name: str
    account: str
    paths: Sequence[str]  # taken in turn
    target: float
    work: Work  # the same reads in this process, for the diagnosis
    times: list[float] = field(default_factory=list)
    size: int = 0  # bytes of the last answer

    @property
    def missed(self) -> bool:
        return not self.times or quantile(self.times, 0.95) > self.target


def ms(seconds: float) -> str:
    return f"{1000 * seconds:,.0f} ms" if seconds >= 0.0095 else f"{1000 * seconds:.1f} ms"


async def signed_in(base_url: str, engine: AsyncEngine, account: str) -> httpx.AsyncClient:
    """A browser of ``account``: a sign-in link opened, its button pressed, the cookie kept."""
    async with unit_of_work(engine, "bench_sign_in") as connection:
        token = await sessions.create_link(
            connection, account, now=system_clock(), requested_from="bench"
        )
    client = httpx.AsyncClient(base_url=base_url, timeout=300)
    (await client.get(f"/sign-in/{token}")).raise_for_status()
    form = {"csrf_token": client.cookies.get("doisoat_form") or ""}
    answer = await client.post(f"/sign-in/{token}", data=form)
    if answer.status_code != 303 or not client.cookies.get("doisoat_session"):
        raise RuntimeError(f"sign-in of {account} failed: {answer.status_code} {answer.text[:200]}")
    return client


async def timed(call: Callable[[int], Awaitable[object]], args: argparse.Namespace) -> list[float]:
    """``call(index)`` ``--warm-up`` times untimed, then ``--requests`` times timed, in turn."""
    times = []
    for index in range(args.warm_up + args.requests):
        started = time.perf_counter()
        await call(index)
        if index >= args.warm_up:
            times.append(time.perf_counter() - started)
    return times


async def run_work(work: Work, connection: AsyncConnection, _index: int) -> None:
    await work(connection)


async def measure(probe: Probe, client: httpx.AsyncClient, args: argparse.Namespace) -> None:
    async def get(index: int) -> None:
        path = probe.paths[index % len(probe.paths)]
        answer = await client.get(path)
        if answer.status_code != 200:
            raise RuntimeError(f"{probe.name}: {path} answered {answer.status_code}")
        probe.size = len(answer.content)

    probe.times = await timed(get, args)


def judge(report: Report, name: str, account: str, times: Sequence[float], target: float) -> None:
    """One line of figures with its verdict and the load; a miss is one of the run's failures."""
    median, p95 = quantile(times, 0.5), quantile(times, 0.95)
    report.add(
        f"  {name:<38} {account:<20} {len(times):>3} {ms(median):>9} {ms(p95):>9} "
        f"{ms(max(times)):>9}  {target_verdict(p95 <= target, f'p95 ≤ {ms(target)}')}  "
        f"load {load_average()}"
    )
    if p95 > target:
        report.failures.append(f"{name} p95 {ms(p95)} (target {ms(target)})")


# ------------------------------------------------------------------------------ diagnosis


async def diagnose(engine: AsyncEngine, probe: Probe, report: Report) -> None:
    """The page's reads in this process, each statement EXPLAIN ANALYZEd; the slowest plan."""
    found = await explain_path(engine, probe.work)
    report.add(
        f"  {probe.name}: its reads in this process {ms(found.wall)}, {found.statements} "
        f"statements; {ms(found.database)} executing in PostgreSQL (EXPLAIN ANALYZE), the rest "
        "Python and the driver"
    )
    for plan in found.plans[:4]:
        report.add(f"    {ms(plan.seconds):>9}  {plan.summary()}")
    for line in found.plans[0].lines[:45] if found.plans else ():
        report.add(f"      {shortened(line)}")


# ------------------------------------------------------------------------------ the run


async def store_past_weeks(engine: AsyncEngine) -> str:
    """Store the past weeks' KPI counts as the running reconciler does every few minutes."""
    started = time.perf_counter()
    async with unit_of_work(engine, "bench_kpi_weeks") as connection:
        directory = await load_directory(connection)
        rows = await stored.refresh(connection, directory=directory, now=system_clock())
    every = ReconcilerSettings().kpi_weeks_refresh_minutes
    return (
        f"the 12 past weeks' KPI counts stored, as the reconciler does every {every:g} min: "
        f"{rows:,} (week, unit) rows in {time.perf_counter() - started:.2f} s"
    )


def probes(seeded: Seeder, directory: Directory, now: datetime) -> list[Probe]:
    """What is timed; each probe's ``work`` is the page's reads for the diagnosis."""
    week = IsoWeek.containing(now.astimezone(VN_TZ).date())

    def inbox(unit: str) -> Work:
        units = queries.covered_codes(directory, [unit])

        async def work(connection: AsyncConnection) -> None:
            await queries.inbox_page(connection, queries.InboxFilter(units), status="open")
            await queries.inbox_fields(connection, units)
            await queries.unit_names(connection, units)

        return work

    def board(unit: str) -> Work:
        scope = Scope.of(directory, unit=unit, key_units={unit})

        async def work(connection: AsyncConnection) -> None:
            month = month_so_far(now)
            await review.week_kpis(
                connection,
                scope=scope,
                week=week,
                now=now,
                forecast=month,
                stored_max_age=WorkspaceSettings().board_stored_weeks_max_age,
            )
            await lateness.accountability(
                connection,
                scope=scope,
                week=week,
                now=now,
                calendar=ReconcilerSettings().calendar(),
            )
            at = review.outstanding_at(week, now)
            await review.review_lists(connection, scope=scope, at=at, limit=100)

        return work

    async def dossier(connection: AsyncConnection) -> None:
        code = seeded.rich_codes[0]
        await story_of(connection, code, directory=directory, personal_data=True)
        await notifications_of_dossier(connection, code)

    def badges(unit: str, responsible: str | None) -> Work:
        units = queries.covered_codes(directory, [unit])

        async def work(connection: AsyncConnection) -> None:
            await queries.badge_counts(connection, units=units, responsible=responsible)

        return work

    largest = seeded.units[0]  # its busiest handler: the one holding most unresolved ones
    handler = max(largest.handlers, key=lambda account: seeded.held[account])
    leader, unit = largest.leader, largest.code
    pages = [f"/dossiers/{code}" for code in seeded.rich_codes]
    top = PROVINCE_LEADER
    return [
        Probe("GET /inbox (handler)", handler, ["/inbox"], PAGE_TARGET, inbox(unit)),
        Probe("GET /inbox (province leader)", top, ["/inbox"], PAGE_TARGET, inbox(PROVINCE)),
        Probe("GET /dossiers/{code} (rich story)", handler, pages, PAGE_TARGET, dossier),
        Probe("GET /board (province leader)", top, ["/board"], PAGE_TARGET, board(PROVINCE)),
        Probe("GET /board (unit leader)", leader, ["/board"], PAGE_TARGET, board(unit)),
        Probe("GET /badges (handler)", handler, ["/badges"], BADGE_TARGET, badges(unit, handler)),
        Probe(
            "GET /badges (province leader)", top, ["/badges"], BADGE_TARGET, badges(PROVINCE, None)
        ),
    ]


async def run(args: argparse.Namespace, db_url: str, report: Report) -> None:
    report.add(host_line() + " (at start)")
    engine = create_engine(db_url)
    server: ServiceProcess | None = None
    clients: dict[str, httpx.AsyncClient] = {}
    try:
        settings = ("shared_buffers", "work_mem", "jit", "autovacuum")
        report.add("PostgreSQL " + await postgres_summary(engine, settings))
        report.add(
            f"seeding {args.dossiers:,} dossiers, {args.discrepancies:,} unresolved and "
            f"{args.resolved:,} resolved discrepancies with COPY …"
        )
        seeded = await seed(db_url, engine, args)
        report.add(f"seeded in {seeded.seconds:.0f} s: " + counts_text(seeded.counts.items()))
        report.add(await store_past_weeks(engine))
        largest = seeded.units[0]
        report.add(
            f"measured: a handler and the leader of the largest unit, {largest.code} "
            f"({seeded.unit_of.count(0):,} dossiers), the province leader; dossier pages: "
            f"{len(seeded.rich_codes)} long stories in turn"
        )
        env = {k: v for k, v in os.environ.items() if k.startswith("DOISOAT_")}
        env |= {"DOISOAT_DATABASE_URL": db_url, "DOISOAT_LOG_LEVEL": "WARNING"}
        server = await asyncio.to_thread(start_service, "api", env=env, ready=True)
        sampler: ProcessSampler[str] = ProcessSampler({"api": server.pid})
        sampler.start()
        async with engine.connect() as connection:
            directory = await load_directory(connection)
        found = probes(seeded, directory, system_clock())
        report.add(
            f"\n{args.warm_up} warm-up, then {args.requests} timed requests each, one at a time, "
            f"to `doisoat api` (pid {server.pid}):"
        )
        report.add(
            f"  {'request':<38} {'officer':<20} {'n':>3} {'median':>9} {'p95':>9} {'max':>9}"
        )
        for probe in found:
            if probe.account not in clients:
                clients[probe.account] = await signed_in(server.base_url, engine, probe.account)
            cpu = sampler.cpu().get("api", 0.0)
            try:
                await measure(probe, clients[probe.account], args)
            except RuntimeError as error:  # a page that fails is a finding, not the end
                report.add(f"  {error}; the server's log ends with:\n{server.log_tail(15)}")
                report.failures.append(str(error))
                continue
            judge(report, probe.name, probe.account, probe.times, probe.target)
            cpu = (sampler.cpu().get("api", 0.0) - cpu) / (args.warm_up + args.requests)
            report.add(f"{'':>42}server CPU {ms(cpu)} a request, {probe.size:,} bytes")
        sampler.stop()
        report.add(f"  peak RSS of doisoat api: {mib(sampler.peak['api'])}")
        report.add("\nbadge_counts alone, in this process (one query, on one pooled connection):")
        for probe in found[-2:]:
            async with engine.connect() as connection:  # as a request's pooled connection
                times = await timed(partial(run_work, probe.work, connection), args)
            name = "badge_counts " + probe.name.split(" ", 2)[2]
            judge(report, name, probe.account, times, BADGE_TARGET)
        explained = [p for p in found if args.explain == "always" or p.missed]
        if args.explain != "never" and explained:
            report.add("\ndiagnosis (the page's reads in this process, EXPLAIN ANALYZE):")
            for probe in explained:
                await diagnose(engine, probe, report)
        report.add(f"load average at the end: {load_average()}")
    finally:
        for client in clients.values():
            await client.aclose()
        if server is not None:
            await asyncio.to_thread(server.cleanup)
        await engine.dispose()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--dossiers", type=int, default=1_000_000, help="dossiers")
    parser.add_argument("--discrepancies", type=int, help="unresolved (default: 5 %% of dossiers)")
    parser.add_argument("--resolved", type=int, help="resolved ones (default: 4 × unresolved)")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per page")
    parser.add_argument("--warm-up", type=int, default=5, help="untimed requests first")
    parser.add_argument(
        "--explain",
        choices=("auto", "always", "never"),
        default="auto",
        help="EXPLAIN ANALYZE the reads of pages that missed (auto) or of every page",
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    parser.add_argument("--seed", type=int, default=20261207, help="random seed")
    args = parser.parse_args(argv)
    if args.dossiers < 10_000 or args.requests < 1 or args.warm_up < 0:
        parser.error("--dossiers ≥ 10000, --requests ≥ 1, --warm-up ≥ 0")
    if args.discrepancies is None:
        args.discrepancies = args.dossiers // 20
    if args.resolved is None:
        args.resolved = 4 * args.discrepancies
    if not 100 <= args.discrepancies <= args.dossiers // 10:
        parser.error("--discrepancies between 100 and a tenth of --dossiers")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sigterm_as_interrupt()
    report = Report()
    return run_on_fresh_database(
        lambda db_url: asyncio.run(run(args, db_url, report)),
        prefix="bench_workspace",
        keep_db=args.keep_db,
        report=report,
    )


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
