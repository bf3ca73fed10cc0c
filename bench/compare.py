"""Before and after, side by side: ``bench/reconcile.py`` on an earlier revision and on this tree.

The earlier revision (default ``c3f026c``, the last before issue 15) is checked out with
``git worktree add`` into a temporary folder under ``/tmp``, and this tree's ``bench/`` scripts
are copied over its own, so both sides run the same benchmark on the same seeded rows (the
script leaves out what the earlier schema lacks: there, the date marks table does not exist and
the rewritten dossiers are clean). The earlier side runs with ``PYTHONPATH`` on the worktree,
its ``doisoat reconciler`` processes too. Each side writes its headline figures with ``--json``;
the table compares them. The worktree is removed at the end, also on Ctrl-C or SIGTERM; the main
checkout's branch, index and files are not touched.

Run from the repository root: ``.venv/bin/python bench/compare.py --help``; the options after
``--`` go to both runs of ``bench/reconcile.py``.
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
DEFAULT_ARGS = ("--profile", "never", "--skip-resweep", "--chunk-sizes", "5000")
#: (label, key in the JSON figures, unit, target); a ``{processes}``/``{chunk}`` key is filled in.
ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("(c) periodic sweep", "periodic_sweep_s", "s", "≤ 10 s"),
    ("    dossiers it judged", "periodic_judged", "", ""),
    ("(b) incremental chunk of 1,000, p50", "incremental_p50_ms", "ms", ""),
    ("(b) incremental chunk of 1,000, p95", "incremental_p95_ms", "ms", "≤ 100 ms"),
    ("(a) full re-judgement, in process", "rejudge_in_process_s", "s", "(≤ 30 s)"),
    ("(a) full re-judgement, {processes} processes, chunk {chunk}", "processes", "s", "(≤ 30 s)"),
    ("    the same at an earlier moment (c)", "rejudge_earlier_s", "s", ""),
    ("load average at start", "load_at_start", "", ""),
)


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
    shutil.copy2(REPO / "bench" / "reconcile.py", target / "reconcile.py")
    for module in (REPO / "bench" / "common").glob("*.py"):
        shutil.copy2(module, target / "common" / module.name)


def run_side(name: str, root: Path, arguments: Sequence[str], output: Path) -> dict[str, Any]:
    """``bench/reconcile.py`` of ``root`` on ``root``'s code, its lines prefixed with ``name``."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    command = [sys.executable, str(root / "bench" / "reconcile.py"), *arguments]
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
    if isinstance(value, float):
        digits = 2 if unit == "s" and value < 20 else 0 if unit == "ms" and value >= 100 else 1
        return f"{value:,.{digits}f} {unit}".strip()
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(revision: str, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The side-by-side lines: one figure a row, before | after | target."""
    width = 52
    lines = [
        f"{'':<{width}} {'before (' + revision + ')':>18} {'after (this tree)':>18}  target",
        "-" * (width + 48),
    ]
    for label, key, unit, target in ROWS:
        real_key, old = _value(before, key)
        _, new = _value(after, key)
        if key == "processes" and real_key != key:
            parts = real_key.split("_")  # rejudge_2_processes_chunk_5000_s
            label = label.format(processes=parts[1], chunk=f"{int(parts[4]):,}")
        lines.append(f"{label:<{width}} {_shown(old, unit):>18} {_shown(new, unit):>18}  {target}")
    for name, figures in (("before", before), ("after", after)):
        planted = ", ".join(f"{k} {v:,}" for k, v in sorted(figures.get("planted", {}).items()))
        lines.append(f"{name}: planted and required open: {planted}")
        failures = figures.get("failures") or []
        lines.append(f"{name}: {'; '.join(failures) if failures else 'no failure'}")
    return lines


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="Options after -- go to bench/reconcile.py (default: "
        + " ".join(DEFAULT_ARGS)
        + "); --dossiers is added unless given there.",
    )
    parser.add_argument("--compare-with", default=BEFORE, metavar="REV", help="the revision")
    parser.add_argument("--dossiers", type=int, default=1_000_000, help="dossier codes")
    parser.add_argument("--order", choices=("before-first", "after-first"), default="before-first")
    raw = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in raw:
        extra = raw[raw.index("--") + 1 :]
        raw = raw[: raw.index("--")]
    args = parser.parse_args(raw)
    passed = extra or list(DEFAULT_ARGS)
    if "--dossiers" not in passed:
        passed = ["--dossiers", str(args.dossiers), *passed]
    return args, passed


def main(argv: list[str] | None = None) -> int:
    args, passed = parse_args(argv)
    sigterm_as_interrupt()
    say(host_line())
    results: dict[str, dict[str, Any]] = {}
    try:
        with (
            tempfile.TemporaryDirectory(prefix="doisoat-compare-") as scratch,
            worktree(args.compare_with) as old_tree,
        ):
            copy_bench(old_tree)
            sides = [("before", old_tree), ("after", REPO)]
            if args.order == "after-first":
                sides.reverse()
            for name, root in sides:
                results[name] = run_side(name, root, passed, Path(scratch) / f"{name}.json")
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    say()
    for line in table(args.compare_with, results["before"], results["after"]):
        say(line)
    return 0 if not results["after"].get("failures") else 1


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
