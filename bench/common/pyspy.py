"""py-spy on the processes under test, and what its raw (collapsed stack) output says.

py-spy is optional (``.venv/bin/pip install py-spy``); the scripts only call it when asked.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import REPO

#: Samples a second of the raw recordings; the summaries turn counts into time with it.
PY_SPY_RATE = 200


def py_spy_executable() -> str:
    """The venv's py-spy when installed there (as the READMEs say), else the one on ``PATH``."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.is_file() else shutil.which("py-spy") or "py-spy"


def start_py_spy(
    pid: int,
    output: Path,
    *,
    rate: int = PY_SPY_RATE,
    output_format: str = "raw",
    options: Sequence[str] = ("--nonblocking",),
    quiet: bool = True,
    own_session: bool = False,
) -> subprocess.Popen[bytes]:
    """``py-spy record`` of ``pid`` into ``output`` until :func:`stop_py_spy`.

    ``--nonblocking`` (the default) does not pause the target at each sample, so it slows it
    less. ``own_session`` keeps Ctrl-C away from py-spy: the caller stops it, in its order.
    """
    command = [py_spy_executable(), "record", "--pid", str(pid), "--rate", str(rate)]
    command += ["--format", output_format, *options, "--output", str(output)]
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL if quiet else None,
        start_new_session=own_session,
    )


def stop_py_spy(process: subprocess.Popen[bytes]) -> None:
    """SIGINT, since py-spy writes its file when interrupted; killed if it takes 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def short_path(filename: str, *, stdlib_names: bool = False) -> str:
    """A source file as a reader wants it: the path inside its package or the repository.

    ``stdlib_names`` also names any other file ``stdlib/<name>`` and cProfile's ``~`` (C
    functions) ``builtins``; without it such files keep their full path.
    """
    if stdlib_names and filename == "~":
        return "builtins"
    if filename.startswith("<"):
        return filename
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1]
    with contextlib.suppress(ValueError):
        return str(Path(filename).relative_to(REPO))
    return "stdlib/" + Path(filename).name if stdlib_names else filename


def spy_frame(frame: str, *, stdlib_names: bool = False) -> str:
    """py-spy's ``function (path:line)`` as ``path:function`` (lines apart, a function is one).

    py-spy already writes paths relative to ``sys.path`` entries; only absolute ones are
    shortened.
    """
    name, _, rest = frame.partition(" (")
    filename = rest.rstrip(")").rpartition(":")[0]
    if filename.startswith("/"):
        filename = short_path(filename, stdlib_names=stdlib_names)
    return f"{filename}:{name}" if filename else name


@dataclass
class Stacks:
    """Samples by frame: ``own`` where the sample was taken, ``inclusive`` anywhere on the stack."""

    own: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    total: int = 0

    def ranked(self, frames: Iterable[tuple[str, int]], indent: str) -> list[str]:
        """``  12.3%  path:function`` lines, each a share of all samples."""
        return [f"{indent}{100 * n / self.total:>5.1f}%  {frame}" for frame, n in frames]


def read_stacks(paths: Iterable[Path], *, stdlib_names: bool = False) -> Stacks:
    """Sum py-spy raw files (one ``frame;frame;… count`` a line); a missing file counts nothing
    (py-spy writes none when it could not attach)."""
    stacks = Stacks()
    for path in paths:
        with contextlib.suppress(OSError), path.open() as lines:
            for line in lines:
                stack, _, count_text = line.rstrip("\n").rpartition(" ")
                if not stack or not count_text.isdigit():
                    continue
                count = int(count_text)
                frames = [spy_frame(frame, stdlib_names=stdlib_names) for frame in stack.split(";")]
                stacks.total += count
                stacks.own[frames[-1]] += count
                for frame in set(frames):
                    stacks.inclusive[frame] += count
    return stacks
