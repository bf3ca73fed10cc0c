"""Before and after, side by side: ``bench/reconcile.py`` (or ``bench/ingest.py``) on one or
more earlier revisions and on this tree.

The earlier revision (default ``c3f026c``, the last before issue 15) is checked out with
``git worktree add`` into a temporary folder under ``/tmp``, and this tree's ``bench/`` scripts
are copied over its own, so both sides run the same benchmark on the same seeded rows (the
script leaves out what the earlier schema lacks: there, the date marks table does not exist and
the rewritten dossiers are clean). The earlier side runs with ``PYTHONPATH`` on the worktree,
its ``doisoat reconciler`` processes too. Each side writes its headline figures with ``--json``;
the table compares them. The worktree is removed at the end, also on Ctrl-C or SIGTERM; the main
checkout's branch, index and files are not touched.

Run from the repository root: ``.venv/bin/python bench/compare.py --help``; the options after
``--`` go to both runs of the benchmark (``--bench reconcile``, the default, or ``ingest``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script (``python bench/compare.py``)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO
from bench.common.console import host_line, ignore_interrupts, say, sigterm_as_interrupt

BEFORE = "c3f026c"
#: (label, key in the JSON figures, unit, target); a ``{processes}``/``{chunk}`` key is filled in.
Rows = tuple[tuple[str, str, str, str], ...]
RECONCILE_ROWS: Rows = (
    ("(c) periodic sweep", "periodic_sweep_s", "s", "≤ 10 s"),
    ("    dossiers it judged", "periodic_judged", "", ""),
    ("(b) incremental chunk of 1,000, p50", "incremental_p50_ms", "ms", ""),
    ("(b) incremental chunk of 1,000, p95", "incremental_p95_ms", "ms", "≤ 100 ms"),
    ("(a) full re-judgement, in process", "rejudge_in_process_s", "s", "(≤ 30 s)"),
    ("(a) full re-judgement, {processes} processes, chunk {chunk}", "processes", "s", "(≤ 30 s)"),
    ("    the same at an earlier moment (c)", "rejudge_earlier_s", "s", ""),
    ("load average at start", "load_at_start", "", ""),
)
INGEST_ROWS: Rows = (
    ("end to end (spawn → all committed)", "end_to_end_events_per_s", "events/s", "≥ 15,000"),
    ("  start-up (spawn → first commit)", "startup_s", "s", ""),
    ("    of which the broker held the join", "join_held_s", "s", ""),
    ("  steady state", "steady_events_per_s", "events/s", "≥ 22,000"),
    ("COPY of the same rows", "copy_events_per_s", "events/s", ""),
    ("ours / COPY's rate, end to end", "share_of_copy_rate", "%", ""),
    ("ours / COPY's rate, steady state", "steady_share_of_copy_rate", "%", "≥ 38 %"),
    ("CPU per event, ingest (steady)", "ingest_us_per_event", "µs", ""),
    ("CPU per event, PostgreSQL (steady)", "postgres_us_per_event", "µs", ""),
    ("machine busy over the run", "machine_busy", "%", ""),
    ("machine busy in steady state", "machine_busy_steady", "%", "≥ 85 %"),
    ("peak RSS of doisoat ingest", "peak_rss_mib", "MiB", "≤ 250 MiB"),
    ("rows as expected", "rows_as_expected", "", ""),
    ("load average at start", "load_at_start", "", ""),
)
#: per benchmark: its script, the default options after ``--``, its rows, whether it takes
#: ``--dossiers`` from this command.
BENCHES: dict[str, tuple[str, tuple[str, ...], Rows, bool]] = {
    "reconcile": (
        "reconcile.py",
        ("--profile", "never", "--skip-resweep", "--chunk-sizes", "5000"),
        RECONCILE_ROWS,
        True,
    ),
    "ingest": ("ingest.py", (), INGEST_ROWS, False),
}


@contextlib.contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """``revision`` checked out (detached) in a new folder under /tmp, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="doisoat-before-", dir="/tmp"))
    folder.rmdir()  # git wants to create it
    git = ["git", "-C", str(REPO)]
    subprocess.run([*git, "worktree", "add", "--detach", str(folder), revision], check=True)
    try:
        yield folder
    finally:
        ignore_interrupts()
        subprocess.run([*git, "worktree", "remove", "--force", str(folder)], check=False)
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run([*git, "worktree", "prune"], check=False)
        say(f"worktree {folder} removed")


def copy_bench(into: Path) -> None:
    """This tree's benchmark scripts over the worktree's, so both sides run the same one."""
    target = into / "bench"
    (target / "common").mkdir(parents=True, exist_ok=True)
    for script in {script for script, _, _, _ in BENCHES.values()}:
        shutil.copy2(REPO / "bench" / script, target / script)
    for module in (REPO / "bench" / "common").glob("*.py"):
        shutil.copy2(module, target / "common" / module.name)


def run_side(
    name: str, root: Path, script: str, arguments: Sequence[str], output: Path
) -> dict[str, Any]:
    """``bench/<script>`` of ``root`` on ``root``'s code, its lines prefixed with ``name``."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    command = [sys.executable, str(root / "bench" / script), *arguments]
    command += ["--json", str(output)]
    say(f"[{name}] {' '.join(command[1:])}")
    with subprocess.Popen(
        command,
        cwd=root,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        assert process.stdout is not None
        try:
            for line in process.stdout:
                say(f"[{name}] {line.rstrip()}")
        except BaseException:  # Ctrl-C or SIGTERM: the run drops its database on SIGTERM
            process.terminate()
            process.wait(120)
            raise
    if not output.exists():
        raise SystemExit(f"[{name}] exited {process.returncode} without figures")
    figures: dict[str, Any] = json.loads(output.read_text())
    return figures


def _value(figures: dict[str, Any], key: str) -> tuple[str, Any]:
    if key != "processes":
        return key, figures.get(key)
    found = [k for k in figures if k.startswith("rejudge_") and "_processes_chunk_" in k]
    return (found[0], figures[found[0]]) if found else (key, None)


def _shown(value: Any, unit: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if unit == "%" and isinstance(value, float):
        return f"{value:.1%}"  # a share: of COPY's rate, of the machine's CPUs
    if isinstance(value, float):
        digits = 2 if unit == "s" and value < 20 else 0 if unit == "ms" and value >= 100 else 1
        return f"{value:,.{digits}f} {unit}".strip()
    if isinstance(value, int):
        return f"{value:,} {unit}".strip()
    return str(value)


def table(rows: Rows, results: dict[str, dict[str, Any]]) -> list[str]:
    """The side-by-side lines: one figure a row, a column per side (earlier revisions first,
    this tree last), then the target."""
    width = 52
    names = list(results)
    lines = [
        f"{'':<{width}}" + "".join(f" {name:>18}" for name in names) + "  target",
        "-" * (width + 19 * len(names) + 10),
    ]
    for label, key, unit, target in rows:
        values = [_value(results[name], key) for name in names]
        found = [real for real, _ in values if real != key]
        if key == "processes" and not found:
            continue  # run with --processes 0: no such row to show
        if key == "processes":
            parts = found[0].split("_")  # rejudge_2_processes_chunk_5000_s
            label = label.format(processes=parts[1], chunk=f"{int(parts[4]):,}")
        shown = "".join(f" {_shown(value, unit):>18}" for _, value in values)
        lines.append(f"{label:<{width}}{shown}  {target}")
    for name, figures in results.items():
        planted = ", ".join(f"{k} {v:,}" for k, v in sorted(figures.get("planted", {}).items()))
        if planted:
            lines.append(f"{name}: planted and required open: {planted}")
        failures = figures.get("failures") or []
        lines.append(f"{name}: {'; '.join(failures) if failures else 'no failure'}")
    return lines


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="Options after -- go to the benchmark (default for reconcile: "
        + " ".join(BENCHES["reconcile"][1])
        + "; --dossiers is added unless given there).",
    )
    parser.add_argument("--bench", choices=sorted(BENCHES), default="reconcile")
    parser.add_argument(
        "--compare-with",
        action="append",
        metavar="REV",
        help=f"an earlier revision; repeat for several, each a column (default: {BEFORE})",
    )
    parser.add_argument("--dossiers", type=int, default=1_000_000, help="dossier codes")
    parser.add_argument("--order", choices=("before-first", "after-first"), default="before-first")
    raw = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in raw:
        extra = raw[raw.index("--") + 1 :]
        raw = raw[: raw.index("--")]
    args = parser.parse_args(raw)
    args.compare_with = args.compare_with or [BEFORE]
    _, defaults, _, takes_dossiers = BENCHES[args.bench]
    passed = extra or list(defaults)
    if takes_dossiers and "--dossiers" not in passed:
        passed = ["--dossiers", str(args.dossiers), *passed]
    return args, passed


def main(argv: list[str] | None = None) -> int:
    args, passed = parse_args(argv)
    script, _, rows, _ = BENCHES[args.bench]
    sigterm_as_interrupt()
    say(host_line())
    results: dict[str, dict[str, Any]] = {}
    after = "after (this tree)"
    # (column, revision to check out; None: this tree), earlier revisions first.
    sides: list[tuple[str, str | None]] = [(f"before ({rev})", rev) for rev in args.compare_with]
    sides.append((after, None))
    if args.order == "after-first":
        sides = sides[-1:] + sides[:-1]
    try:
        with tempfile.TemporaryDirectory(prefix="doisoat-compare-") as scratch:
            for number, (name, revision) in enumerate(sides):
                output = Path(scratch) / f"side-{number}.json"
                if revision is None:
                    results[name] = run_side(name, REPO, script, passed, output)
                    continue
                with worktree(revision) as old_tree:
                    copy_bench(old_tree)
                    results[name] = run_side(name, old_tree, script, passed, output)
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    say()
    columns = [f"before ({rev})" for rev in args.compare_with] + [after]
    for line in table(rows, {name: results[name] for name in columns}):
        say(line)
    return 0 if not results[after].get("failures") else 1


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
