"""The terminal side of a benchmark: progress lines, host load, Ctrl-C and SIGTERM, options."""

from __future__ import annotations

import argparse
import os
import signal
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TypeVar

import psutil

T = TypeVar("T")


def say(message: str = "") -> None:
    """Print and flush at once: runs last minutes and are often piped through ``tee``."""
    print(message, flush=True)


def load_average() -> str:
    """The three load averages: the machines are shared, and a disturbed run shows here."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def host_line() -> str:
    """Cores, memory and load at the start, printed ahead of the figures they qualify."""
    return (
        f"host: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"load average {load_average()}"
    )


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def sigterm_as_interrupt() -> None:
    """Let SIGTERM unwind like Ctrl-C, so the ``finally`` blocks stop processes and drop the
    database (``timeout`` and CI runners send SIGTERM)."""
    signal.signal(signal.SIGTERM, _raise_interrupt)


def ignore_interrupts() -> None:
    """Called when cleanup begins: a second Ctrl-C must not skip it and leave a database."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def comma_list(
    kind: Callable[[str], T],
    choices: Sequence[T] | None = None,
    *,
    accept: Callable[[T], bool] | None = None,
    error: str | None = None,
) -> Callable[[str], list[T]]:
    """An argparse ``type`` for ``1,2``: one option then asks for several runs in a row."""

    def parse(value: str) -> list[T]:
        items = [kind(part.strip()) for part in value.split(",") if part.strip()]
        if (
            not items
            or (choices is not None and any(item not in choices for item in items))
            or (accept is not None and not all(accept(item) for item in items))
        ):
            raise argparse.ArgumentTypeError(error or f"comma-separated, among {choices}")
        return items

    # argparse names the type in its "invalid … value" message
    parse.__name__ = f"comma-separated {getattr(kind, '__name__', 'value')}"
    return parse
