"""Reconcile benchmark: the periodic sweep and a full re-judgement over a million dossiers, and
the incremental chunk.

1. creates and migrates a fresh PostgreSQL database and seeds ``--dossiers`` dossier codes with
   COPY: 95 % clean (half returned with a matching desk report, half open with a far due date
   and recent activity), 5 % with one planted discrepancy each (returned at the desk but open,
   overdue, stalled, returned at the wrong time, reported at the desk but unknown to the system);
2. (a) full re-judgement in this process: ``reschedule_all`` then ``Reconciler.drain()`` with
   the real clock and the default chunk size, checking that exactly the planted discrepancies
   open; then (unless ``--skip-resweep``) again with everything already open;
3. (a) the same by ``--processes`` ``doisoat reconciler`` OS processes per chunk size, each
   from an empty discrepancy table, timed from the committed reschedule until no due row is left;
4. when the in-process drain misses 30 s (or ``--profile always``), one chunk of a first sweep
   is profiled with cProfile, with the SQL round trips timed by statement;
5. (c) the periodic sweep: every dossier judged first at a moment days ago (the state the
   service leaves: each dossier's next mark written), then one sweep at the real clock, which
   claims only the dossiers whose mark has passed and must find every planted discrepancy;
6. (b) incremental: ``--repetitions`` times, 1,000 random dossiers change (status 2 ↔ 4 and a new
   snapshot time) and are marked for reconcile, and one ``reconcile_chunk()`` is timed;
7. prints the figures and drops the database (unless ``--keep-db``), also on Ctrl-C or SIGTERM.

Run from the repository root: ``.venv/bin/python bench/reconcile.py --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import hashlib
import json
import os
import pstats
import random
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

if __package__ in (None, ""):  # run as a script (``python bench/reconcile.py``): find ``tests``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO
from bench.common.console import comma_list, host_line, load_average, say, sigterm_as_interrupt
from bench.common.database import (
    autocommit,
    fetch_all,
    postgres_summary,
    run_on_fresh_database,
    scalar,
)
from bench.common.figures import Report, counts_text, mib, quantile, target_verdict
from bench.common.pyspy import PY_SPY_RATE, read_stacks, short_path, start_py_spy, stop_py_spy
from bench.common.sampling import ProcessSampler
from services.reconciler import service
from services.reconciler.config import ReconcilerSettings
from services.reconciler.schedule import mark_for_reconcile
from services.reconciler.service import Judgement
from services.reconciler.worker import Reconciler
from shared.clock import system_clock
from shared.db import create_engine, unit_of_work
from tests.support.postgres import asyncpg_dsn
from tests.support.processes import ServiceProcess, start_service

SWEEP_TARGET_SECONDS = 30.0
SWEEP_TARGET = f"≤ {SWEEP_TARGET_SECONDS:.0f} s"
INCREMENTAL_TARGET_SECONDS = 0.200
INCREMENTAL_SIZE = 1000
SEED_BATCH = 50_000

UNITS = [f"000.{a:02d}.{b:02d}.H08" for a in (0, 1, 2, 3) for b in range(10, 20)]
PROCEDURES = ("1.004227", "1.001612", "2.000908", "1.000894", "1.010733", "2.001711")
OFFICERS = ("lethic.motcua", "nguyenvana.motcua", "tranthib.motcua")
HANDLERS = ("phamvanc.tnmt", "levand.tuphap", "hoangthie.xaydung", None)

# What is planted, as a share of all dossier codes; every other code is clean.
CLEAN_OPEN, CLEAN_RETURNED = "clean open", "clean returned"
PLANTED: dict[str, float] = {
    "RETURNED_BUT_OPEN": 0.02,
    "OVERDUE_NO_APOLOGY": 0.01,
    "STALLED": 0.01,
    "TIME_MISMATCH": 0.005,
    "NOT_IN_SYSTEM": 0.005,
}
LABELS = [CLEAN_OPEN, CLEAN_RETURNED, *PLANTED]  # the index of a label is stored per code
NOT_IN_SYSTEM = LABELS.index("NOT_IN_SYSTEM")

DOSSIER_COLUMNS = (
    "code",
    "status",
    "unit_code",
    "procedure_code",
    "channel",
    "digitised",
    "received_at",
    "due_at",
    "finished_at",
    "returned_at",
    "snapshot",
    "snapshot_emitted_at",
    "snapshot_event_id",
    "latest_step_at",
    "responsible",
)
REPORT_COLUMNS = (
    "report_id",
    "dossier_code",
    "kind",
    "occurred_at",
    "officer",
    "unit_code",
    "channel",
    "received_at",
)


def code_of(number: int) -> str:
    return f"{UNITS[number % len(UNITS)]}-241021-{number:07d}"


MEASURED_CODE = (
    "services/reconciler/*.py",
    "services/reconciler/kpis/*.py",
    "services/app/cli.py",
    "shared/calendar.py",
    "shared/db.py",
    "shared/models.py",
    "shared/dvcqg.py",
)


def code_fingerprint() -> str:
    """Digest of the code a sweep runs (the tree may change while a long run goes on)."""
    digest = hashlib.sha256()
    files = sorted(path for pattern in MEASURED_CODE for path in REPO.glob(pattern))
    for path in files:
        digest.update(str(path.relative_to(REPO)).encode())
        with contextlib.suppress(OSError):
            digest.update(path.read_bytes())
    newest = max((path.stat().st_mtime for path in files), default=0.0)
    stamp = datetime.fromtimestamp(newest).strftime("%H:%M:%S")
    return f"{digest.hexdigest()[:12]} (reconcile path, newest file {stamp})"


# ------------------------------------------------------------------------------------ seeding


@dataclass
class Seeded:
    now: datetime
    before: datetime  # the "last judged" moment of the periodic sweep phase (see below)
    codes: int
    labels: bytearray  # LABELS index per dossier number
    planted: dict[str, int]
    dossier_rows: int
    report_rows: int
    seconds: float


async def seed(db_url: str, total: int, rng: random.Random) -> Seeded:
    """COPY ``total`` dossier codes (dossier rows and desk reports) in one transaction."""
    started = time.perf_counter()
    planted = {kind: round(total * share) for kind, share in PLANTED.items()}
    labels = bytearray(total)  # 0 = clean
    position = 0
    for kind, count in planted.items():
        labels[position : position + count] = bytes([LABELS.index(kind)]) * count
        position += count
    rng.shuffle(labels)
    for number in range(total):  # split the clean half and half, at random
        if labels[number] == 0 and rng.random() < 0.5:
            labels[number] = 1

    now = system_clock()
    calendar = ReconcilerSettings().calendar()
    day = timedelta(days=1)
    # Stalled: the stall mark falls a little before now (at the last office minute an hour or
    # more ago), so that a periodic sweep run now is the one that finds it.
    settings = ReconcilerSettings()
    stall_after = settings.rule_settings(calendar).stall_after
    last_office_minute = calendar.previous_office_end(now - timedelta(hours=1)) - timedelta(
        minutes=1
    )
    stalled_at = calendar.add_working_time(last_office_minute, -stall_after)
    # The periodic sweep phase judges everything first at ``before``, when no time-based
    # planted condition held yet (the last was the desk report of a day ago, or the stall).
    before = min(now - timedelta(days=4), last_office_minute - timedelta(hours=1))
    occurred = [now - day - timedelta(minutes=m) for m in range(60)]  # desk: a day ago
    recent = [now - timedelta(minutes=5 + m) for m in range(90)]  # activity: minutes ago
    received = now - timedelta(days=10)
    far_due = now + timedelta(days=60)
    past_due = now - timedelta(days=2)
    six_hours, ten_minutes = timedelta(hours=6), timedelta(minutes=10)
    clean_open, clean_returned = 0, 1
    rbo, overdue, stalled, mismatch, nis = (LABELS.index(kind) for kind in PLANTED)

    dossier_rows = report_rows = 0
    connection = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        async with connection.transaction():
            for start in range(0, total, SEED_BATCH):
                dossiers: list[tuple[Any, ...]] = []
                reports: list[tuple[Any, ...]] = []
                for number in range(start, min(total, start + SEED_BATCH)):
                    label = labels[number]
                    code = code_of(number)
                    unit = UNITS[number % len(UNITS)]
                    desk = occurred[number % 60]
                    if label in (clean_returned, rbo, mismatch, nis):
                        reports.append(
                            (
                                f"r{number}",
                                code,
                                "returned",
                                desk,
                                OFFICERS[number % 3],
                                unit,
                                "api",
                                desk + timedelta(minutes=1),
                            )
                        )
                    if label == nis:
                        continue  # the desk knows it, the system never sent it
                    if label in (clean_returned, mismatch):
                        status = 10
                        due, finished = received + timedelta(days=15), desk - timedelta(hours=1)
                        returned = desk + six_hours if label == mismatch else desk
                        activity = desk
                    else:
                        status = 2 if rng.random() < 0.5 else 4
                        due, finished, returned = far_due, None, None
                        activity = recent[number % 90]
                        if label == overdue:
                            due = past_due
                        elif label == stalled:
                            activity = stalled_at
                        elif label not in (clean_open, rbo):
                            raise AssertionError(label)
                    dossiers.append(
                        (
                            code,
                            status,
                            unit,
                            PROCEDURES[number % len(PROCEDURES)],
                            1 + number % 2,
                            number % 5 != 0,
                            received,
                            due,
                            finished,
                            returned,
                            "{}",
                            activity,
                            f"s{number}",
                            activity - ten_minutes,
                            HANDLERS[number % len(HANDLERS)],
                        )
                    )
                await connection.copy_records_to_table(
                    "dossiers", records=dossiers, columns=DOSSIER_COLUMNS
                )
                await connection.copy_records_to_table(
                    "field_reports", records=reports, columns=REPORT_COLUMNS
                )
                dossier_rows += len(dossiers)
                report_rows += len(reports)
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return Seeded(
        now,
        before,
        total,
        labels,
        planted,
        dossier_rows,
        report_rows,
        time.perf_counter() - started,
    )


# ---------------------------------------------------------------------------- measurements


STATEMENT_LABELS = (
    ("FOR UPDATE SKIP LOCKED", "claim (SELECT … FOR UPDATE SKIP LOCKED)"),
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
            count = await original(on_chunk)
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


# ------------------------------------------------------------------------------------- phases


async def sweep_in_process(
    engine: AsyncEngine,
    db_url: str,
    seeded: Seeded,
    report: Report,
    *,
    first: bool,
    title: str | None = None,
) -> float:
    """``reschedule_all`` + ``drain()`` here, default chunk size; returns the drain seconds."""
    settings = ReconcilerSettings(database_url=db_url)
    reconciler = Reconciler(settings, engine, system_clock)
    chunks = TimedChunks(reconciler)
    timer = SqlTimer(engine)
    if title is None:
        what = "first sweep (nothing open yet)" if first else "re-sweep (everything already open)"
        title = f"(a) in-process {what}"
    report.add(f"{title}: chunk {settings.reconcile_chunk_size}, load {load_average()}")
    reschedule_seconds = await reschedule(engine)
    timer.reset()
    sampler = ProcessSampler({os.getpid(): os.getpid()})
    sampler.start()
    cpu_before = time.process_time()
    started = time.perf_counter()
    judged = await reconciler.drain()
    drain_seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    timer.active = False
    sampler.stop()
    pid = os.getpid()
    total = reschedule_seconds + drain_seconds
    report.add(
        f"    reschedule_all {reschedule_seconds:.1f} s + drain {drain_seconds:.1f} s = "
        f"{total:.1f} s  " + target_verdict(total <= SWEEP_TARGET_SECONDS, SWEEP_TARGET)
    )
    report.add(
        f"    {judged:,} dossiers judged, {judged / drain_seconds:,.0f} dossiers/s (drain), "
        f"{judged / total:,.0f} dossiers/s (with reschedule); this process's CPU {cpu:.1f} s "
        f"({100 * cpu / drain_seconds:.0f} % of one core)"
    )
    report.add(f"    {chunks.summary()}")
    report.add(
        f"    RSS {mib(sampler.first[pid])} before, peak {mib(sampler.peak[pid])} during, "
        f"{mib(sampler.last[pid])} after (ru_maxrss of the whole run so far "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)"
    )
    report.add("    SQL per chunk (whole sweep averaged):")
    for line in timer.table(max(1, len(chunks.durations)), drain_seconds, "chunk"):
        report.add(line)
    found = await open_by_kind(engine)
    ok, lines = kind_table(found, seeded.planted)
    report.add(f"    unresolved discrepancies by kind: {'as planted' if ok else 'NOT AS PLANTED'}")
    for line in lines:
        report.add(line)
    if judged != seeded.codes:
        report.failures.append(f"in-process sweep judged {judged:,} of {seeded.codes:,}")
    if not ok:
        report.failures.append(f"{title}: discrepancies not as planted")
    timer.remove(engine)
    report.add()
    return drain_seconds


async def periodic_sweep(engine: AsyncEngine, db_url: str, seeded: Seeded, report: Report) -> None:
    """The sweep as it runs every minute: an indexed query for the marks that have come due.

    The database is first brought to the state the service leaves behind: every dossier judged
    at ``before`` (days ago, when none of the time-based planted conditions held yet), which
    writes each dossier's next mark (due-soon window, due date, stall mark, grace expiry). Then
    one sweep at the real clock: it claims only the dossiers whose mark has passed, through the
    index on ``check_at``, and must find every planted discrepancy.
    """
    settings = ReconcilerSettings(database_url=db_url)
    await reset_discrepancies(engine)
    before = seeded.before
    report.add(
        f"(c) periodic sweep over all {seeded.dossier_rows:,} dossiers: chunk "
        f"{settings.reconcile_chunk_size}, load {load_average()}"
    )
    async with unit_of_work(engine, "bench") as connection:
        await service.reschedule_all(connection, now=before)
    started = time.perf_counter()
    judged_before = await Reconciler(settings, engine, lambda: before).drain()
    earlier = time.perf_counter() - started
    async with engine.connect() as connection:
        scheduled = (
            await connection.execute(text("SELECT count(*) FROM reconcile_schedule"))
        ).scalar_one()
    report.add(
        f"    state left by the service: every dossier judged at {before:%Y-%m-%d %H:%M} UTC "
        f"({judged_before:,} in {earlier:.1f} s, a full re-judgement); open then: "
        + (counts_text(sorted((await open_by_kind(engine)).items())) or "none")
        + f"; {scheduled:,} dossiers hold a next mark"
    )
    await autocommit(engine, "VACUUM ANALYZE reconcile_schedule, discrepancies")
    reconciler = Reconciler(settings, engine, system_clock)
    chunks = TimedChunks(reconciler)
    sampler = ProcessSampler({os.getpid(): os.getpid()})
    sampler.start()
    since = system_clock()
    started = time.perf_counter()
    judged = await reconciler.drain()
    wall = time.perf_counter() - started
    sampler.stop()
    history = await history_since(engine, since)
    report.add(
        f"    sweep at now: {wall:.1f} s  "
        + target_verdict(wall <= SWEEP_TARGET_SECONDS, SWEEP_TARGET)
        + f"; {judged:,} of {seeded.dossier_rows:,} dossiers were due and judged; changes: "
        + counts_text(sorted(history.items()))
    )
    report.add(f"    {chunks.summary()}")
    report.add(f"    RSS peak {mib(sampler.peak[os.getpid()])}")
    found = await open_by_kind(engine)
    ok, lines = kind_table(found, seeded.planted)
    report.add(f"    unresolved discrepancies by kind: {'as planted' if ok else 'NOT AS PLANTED'}")
    for line in lines:
        report.add(line)
    if not ok:
        report.failures.append("periodic sweep: discrepancies not as planted")
    report.add()


async def sweep_processes(
    engine: AsyncEngine,
    db_url: str,
    seeded: Seeded,
    report: Report,
    *,
    processes: int,
    chunk_size: int,
    py_spy_dir: Path | None = None,
) -> None:
    """``processes`` × ``doisoat reconciler``: wall time from the reschedule to no due row."""
    await reset_discrepancies(engine)
    env = {
        "DOISOAT_DATABASE_URL": db_url,
        "DOISOAT_RECONCILE_CHUNK_SIZE": str(chunk_size),
        "DOISOAT_RECONCILE_POLL_SECONDS": "0.2",
    }
    what = "py-spy sweep (not a timing)" if py_spy_dir else "first sweep"
    report.add(
        f"(a) {processes} × `doisoat reconciler` {what}: chunk {chunk_size}, load {load_average()}"
    )
    started_processes: list[ServiceProcess] = []
    spies: list[subprocess.Popen[bytes]] = []
    sampler: ProcessSampler[int] | None = None
    try:
        for _ in range(processes):
            started_processes.append(await asyncio.to_thread(start_service, "reconciler", env=env))
        pids = [p.pid for p in started_processes]
        startup = await wait_idle(started_processes)
        report.add(
            "    startup: each process refreshes its gauges (KPIs included) before it idles: "
            + ", ".join(f"{seconds:.1f} s" for seconds in startup)
            + " after /healthz; the sweep starts after that"
        )
        sampler = ProcessSampler({pid: pid for pid in pids})
        sampler.start()
        cpu_before = sampler.cpu()
        if py_spy_dir is not None:
            spies = [start_py_spy(pid, py_spy_dir / f"reconciler-{pid}.txt") for pid in pids]
            await asyncio.sleep(1.0)
        started = time.perf_counter()
        reschedule_seconds = await reschedule(engine)
        while await due_left(engine):  # noqa: ASYNC110 (polling another process's progress)
            await asyncio.sleep(0.1)
        wall = time.perf_counter() - started
        sampler.stop()
        cpu_after = sampler.cpu()
        cpu = {pid: cpu_after[pid] - cpu_before[pid] for pid in pids}
        judged = [int(p.metric("doisoat_reconcile_dossiers_total")) for p in started_processes]
        for spy in spies:
            stop_py_spy(spy)
    finally:
        if sampler is not None:
            sampler.stop()
        for spy in spies:
            stop_py_spy(spy)
        for process in started_processes:
            if report.failures or process.returncode not in (None, 0):
                say(process.log_tail(10))
            await asyncio.to_thread(process.cleanup)
    report.add(
        f"    wall {wall:.1f} s from reschedule_all to no due row (reschedule_all "
        f"{reschedule_seconds:.1f} s of it)  "
        + target_verdict(wall <= SWEEP_TARGET_SECONDS, SWEEP_TARGET)
        + f"; {sum(judged) / wall:,.0f} dossiers/s"
    )
    report.add(
        "    per process: "
        + "; ".join(
            f"{count:,} judged, CPU {cpu[pid]:.1f} s, RSS peak {mib(sampler.peak[pid])} "
            f"(start {mib(sampler.first[pid])})"
            for count, pid in zip(judged, pids, strict=True)
        )
    )
    found = await open_by_kind(engine)
    ok, lines = kind_table(found, seeded.planted)
    report.add(f"    unresolved discrepancies by kind: {'as planted' if ok else 'NOT AS PLANTED'}")
    if not ok:
        for line in lines:
            report.add(line)
        report.failures.append(f"{processes} processes, chunk {chunk_size}: not as planted")
    if sum(judged) != seeded.codes:
        report.failures.append(
            f"{processes} processes, chunk {chunk_size}: judged {sum(judged):,} of {seeded.codes:,}"
        )
    if py_spy_dir is not None:
        for line in py_spy_summary([py_spy_dir / f"reconciler-{pid}.txt" for pid in pids], wall):
            report.add(line)
    report.add()


async def wait_idle(
    processes: Sequence[ServiceProcess], limit_seconds: float = 600.0
) -> list[float]:
    """Until each process has finished its first pass (the last-sweep gauge is set)."""
    started = time.perf_counter()
    waited: list[float] = []
    for process in processes:
        while not await asyncio.to_thread(
            process.metric, "doisoat_reconcile_last_sweep_timestamp_seconds"
        ):
            if time.perf_counter() - started > limit_seconds:
                raise TimeoutError(f"{process!r} did not finish its first pass")
            await asyncio.sleep(0.2)
        waited.append(time.perf_counter() - started)
    return waited


async def incremental(
    engine: AsyncEngine,
    db_url: str,
    seeded: Seeded,
    report: Report,
    *,
    repetitions: int,
    rng: random.Random,
) -> None:
    """1,000 changed dossiers, one ``reconcile_chunk()``: median and p95 over repetitions."""
    settings = ReconcilerSettings(database_url=db_url, reconcile_chunk_size=INCREMENTAL_SIZE)
    reconciler = Reconciler(settings, engine, system_clock)
    timer = SqlTimer(engine)
    timer.active = False
    report.add(
        f"(b) incremental: {INCREMENTAL_SIZE:,} random dossiers change (status 2 ↔ 4, new "
        f"snapshot time) and are marked; one reconcile_chunk() of {INCREMENTAL_SIZE:,}, "
        f"{repetitions} repetitions, load {load_average()}"
    )
    if await due_left(engine):
        report.failures.append("incremental: due rows were left before it started")
    since = system_clock()
    durations: list[float] = []
    judged: list[int] = []
    for repetition in range(repetitions + 1):  # the first one warms caches and is not counted
        chosen: set[int] = set()
        while len(chosen) < INCREMENTAL_SIZE:
            number = rng.randrange(seeded.codes)
            if seeded.labels[number] != NOT_IN_SYSTEM:
                chosen.add(number)
        codes = [code_of(number) for number in chosen]
        now = system_clock()
        async with unit_of_work(engine, "bench") as connection:
            await connection.execute(
                text(
                    "UPDATE dossiers SET status = CASE status WHEN 2 THEN 4 WHEN 4 THEN 2 "
                    "ELSE status END, snapshot_emitted_at = :now WHERE code = ANY(:codes)"
                ),
                {"now": now, "codes": codes},
            )
            await mark_for_reconcile(connection, codes, at=now)
        if repetition == 1:
            timer.reset()
        timer.active = True
        started = time.perf_counter()
        count = await reconciler.reconcile_chunk()
        elapsed = time.perf_counter() - started
        timer.active = False
        if repetition:
            durations.append(elapsed)
            judged.append(count)
    median, p95 = statistics.median(durations), quantile(durations, 0.95)
    report.add(
        f"    median {1000 * median:.0f} ms, p95 {1000 * p95:.0f} ms, "
        f"min {1000 * min(durations):.0f} ms, max {1000 * max(durations):.0f} ms  "
        + target_verdict(
            p95 <= INCREMENTAL_TARGET_SECONDS, f"≤ {1000 * INCREMENTAL_TARGET_SECONDS:.0f} ms"
        )
    )
    changes = await history_since(engine, since)
    report.add(
        f"    dossiers per chunk: {sorted(set(judged))}; discrepancy changes over all "
        f"{repetitions + 1} chunks: "
        + counts_text(sorted(changes.items()))
        + f", details updated in place {await updated_since(engine, since):,}"
    )
    report.add("    SQL per chunk:")
    for line in timer.table(len(durations), sum(durations), "chunk"):
        report.add(line)
    timer.remove(engine)
    if any(count != INCREMENTAL_SIZE for count in judged):
        report.failures.append(f"incremental: chunks judged {sorted(set(judged))}")
    report.add()


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


# --------------------------------------------------------------------------------------- main


async def run(args: argparse.Namespace, db_url: str, report: Report, fingerprint: str) -> None:
    rng = random.Random(args.seed)
    report.add(f"seeding {args.dossiers:,} dossier codes with COPY …")
    seeded = await seed(db_url, args.dossiers, rng)
    report.add(
        f"seeded {seeded.dossier_rows:,} dossiers and {seeded.report_rows:,} desk reports "
        f"({seeded.codes:,} codes) in {seeded.seconds:.1f} s, then ANALYZE; planted: "
        + counts_text(seeded.planted.items())
    )
    engine = create_engine(db_url)
    try:
        report.add(f"service code measured: {fingerprint}")
        settings = ("shared_buffers", "synchronous_commit", "fsync", "autovacuum")
        report.add("PostgreSQL " + await postgres_summary(engine, settings))
        report.add(host_line())
        report.add()
        drain_seconds = await sweep_in_process(engine, db_url, seeded, report, first=True)
        await plan_diagnostics(engine, db_url, seeded, report)
        report.add()
        if not args.skip_resweep:
            await sweep_in_process(engine, db_url, seeded, report, first=False)
        for chunk_size in args.chunk_sizes if args.processes else ():
            await sweep_processes(
                engine,
                db_url,
                seeded,
                report,
                processes=args.processes,
                chunk_size=chunk_size,
            )
        if args.py_spy is not None and args.processes:
            args.py_spy.mkdir(parents=True, exist_ok=True)
            await sweep_processes(
                engine,
                db_url,
                seeded,
                report,
                processes=args.processes,
                chunk_size=args.chunk_sizes[0],
                py_spy_dir=args.py_spy,
            )
        if args.profile == "always" or (
            args.profile == "auto" and drain_seconds > SWEEP_TARGET_SECONDS
        ):
            await profile_chunk(
                engine,
                db_url,
                seeded,
                report,
                chunks=args.profile_chunks,
                output=args.profile_out,
            )
        # Also leaves nothing due (after the profile's half sweep) for the incremental part.
        await periodic_sweep(engine, db_url, seeded, report)
        await incremental(engine, db_url, seeded, report, repetitions=args.repetitions, rng=rng)
        if code_fingerprint() != fingerprint:
            report.add(
                f"WARNING: the reconcile code changed during the run (now {code_fingerprint()}): "
                "processes started after that ran the newer code"
            )
    finally:
        await engine.dispose()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--dossiers", type=int, default=1_000_000, help="dossier codes")
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--processes", type=int, default=2, help="`doisoat reconciler` processes (0: none)"
    )
    parser.add_argument(
        "--chunk-sizes",
        type=comma_list(
            int,
            accept=lambda size: 1 <= size <= 10_000,
            error="chunk sizes are 1…10000, comma-separated",
        ),
        default=[1000, 5000],
        help="DOISOAT_RECONCILE_CHUNK_SIZE of the processes, comma-separated",
    )
    parser.add_argument("--repetitions", type=int, default=20, help="incremental chunks timed")
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="cProfile a chunk (auto: when the in-process sweep misses 30 s)",
    )
    parser.add_argument("--profile-chunks", type=int, default=1, help="chunks profiled")
    parser.add_argument("--profile-out", type=Path, default=None, help="write the pstats here")
    parser.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        metavar="DIR",
        help="one more process sweep with py-spy on each process (raw stacks into DIR)",
    )
    parser.add_argument("--skip-resweep", action="store_true", help="no in-process re-sweep")
    parser.add_argument("--seed", type=int, default=20241021, help="random seed")
    args = parser.parse_args(argv)
    if args.dossiers < 1000:
        parser.error("--dossiers must be at least 1000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    fingerprint = code_fingerprint()  # as imported by this process
    sigterm_as_interrupt()
    report = Report()
    return run_on_fresh_database(
        lambda db_url: asyncio.run(run(args, db_url, report, fingerprint)),
        prefix="bench_reconcile",
        keep_db=args.keep_db,
        report=report,
    )


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
