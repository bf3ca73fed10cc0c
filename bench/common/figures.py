"""Turning measurements into the lines a benchmark prints, the same way in every script."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bench.common.console import say

MIB = 1024 * 1024


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile, so a figure is a value that was observed (p99 of 3,000 values is
    the 2,970th smallest; p95 of 20 is the 19th)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 1))))
    return ordered[rank - 1]


def verdict(ok: bool) -> str:
    """One word a reader can grep for across runs."""
    return "OK" if ok else "MISSED"


def target_verdict(ok: bool, target: str) -> str:
    """``[OK target p99 ≤ 2 s]``: the verdict beside the figure it judges."""
    return f"[{verdict(ok)} target {target}]"


def mib(size: float, digits: int = 0) -> str:
    """Bytes as MiB, the unit every memory figure of the READMEs uses."""
    return f"{size / MIB:.{digits}f} MiB"


def counts_text(counts: Iterable[tuple[object, int]]) -> str:
    """``opened 900, resolved 34``: counts with thousands separators, in the order given."""
    return ", ".join(f"{name} {count:,}" for name, count in counts)


def cpu_shares(seconds: Mapping[str, float], wall: float) -> str:
    """CPU seconds per process and as a share of one core over ``wall`` seconds."""
    return ", ".join(f"{name} {s:.1f} s ({100 * s / wall:.0f} %)" for name, s in seconds.items())


@dataclass
class Report:
    """Lines printed as they come (a long run shows its progress) and kept; ``failures`` decide
    the exit status."""

    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    # The headline figures by name, for a machine to read (``--json``, ``bench/compare.py``).
    figures: dict[str, object] = field(default_factory=dict)

    def add(self, line: str = "") -> None:
        self.lines.append(line)
        say(line)
