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
import json
import random
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script (``python bench/reconcile.py``): find ``tests``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common.console import comma_list, host_line, load_average, sigterm_as_interrupt
from bench.common.database import (
    postgres_summary,
    run_on_fresh_database,
)
from bench.common.figures import Report, counts_text
from bench.common.planted import seed
from bench.common.reconcile_phases import (
    code_fingerprint,
    incremental,
    periodic_sweep,
    sweep_in_process,
)
from bench.common.sweep_diagnostics import plan_diagnostics, profile_chunk
from bench.common.sweep_processes import sweep_processes
from bench.common.sweeps import (
    SWEEP_TARGET_SECONDS,
)
from shared.db import create_engine

# --------------------------------------------------------------------------------------- main


async def run(args: argparse.Namespace, db_url: str, report: Report, fingerprint: str) -> None:
    rng = random.Random(args.seed)
    report.add(f"seeding {args.dossiers:,} dossier codes with COPY …")
    seeded = await seed(db_url, args.dossiers, rng)
    report.add(
        f"seeded {seeded.dossier_rows:,} dossiers, {seeded.report_rows:,} desk reports and "
        f"{seeded.mark_rows:,} date marks ({seeded.codes:,} codes) in {seeded.seconds:.1f} s, "
        "then ANALYZE; planted: " + counts_text(seeded.planted.items())
    )
    if "DATES_REWRITTEN" not in seeded.planted:
        report.add(
            f"    this revision has no DATES_REWRITTEN rule or marks table: the "
            f"{len(seeded.rewrites):,} rewritten dossiers are clean here"
        )
    report.figures |= {"dossiers": seeded.dossier_rows, "planted": seeded.planted}
    engine = create_engine(db_url)
    try:
        report.add(f"service code measured: {fingerprint}")
        settings = ("shared_buffers", "synchronous_commit", "fsync", "autovacuum")
        report.add("PostgreSQL " + await postgres_summary(engine, settings))
        report.add(host_line())
        report.figures["load_at_start"] = load_average()
        report.add()
        drain_seconds = 0.0
        if not args.skip_first_sweep:
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
        await incremental(
            engine,
            db_url,
            seeded,
            report,
            repetitions=args.repetitions,
            profiled=args.profile_incremental,
            rng=rng,
        )
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
    parser.add_argument(
        "--skip-first-sweep",
        action="store_true",
        help="no in-process first sweep (a) nor its plan diagnostics",
    )
    parser.add_argument(
        "--profile-incremental",
        type=int,
        default=0,
        metavar="N",
        help="N more incremental chunks under cProfile, after the timed ones",
    )
    parser.add_argument("--seed", type=int, default=20241021, help="random seed")
    parser.add_argument(
        "--json", type=Path, default=None, metavar="FILE", help="write the headline figures here"
    )
    args = parser.parse_args(argv)
    if args.dossiers < 1000:
        parser.error("--dossiers must be at least 1000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    fingerprint = code_fingerprint()  # as imported by this process
    sigterm_as_interrupt()
    report = Report()
    status = run_on_fresh_database(
        lambda db_url: asyncio.run(run(args, db_url, report, fingerprint)),
        prefix="bench_reconcile",
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
