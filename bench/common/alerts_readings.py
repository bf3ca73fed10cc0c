"""What the alerts benchmark reads off its runs: latency spreads, the dossier codes in received
messages, the services' ``/metrics`` and py-spy's stacks."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Sequence
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from bench.common.figures import quantile
from bench.common.pyspy import PY_SPY_RATE, read_stacks
from tests.support.processes import ServiceProcess

CODE_RE = re.compile(r"\d{3}\.\d{2}\.\d{2}\.H08-\d{6}-\d{7}")


def spread(values: Sequence[float]) -> str:
    if not values:
        return "no sample"
    return (
        f"p50 {1000 * quantile(values, 0.5):,.0f} ms, p95 {1000 * quantile(values, 0.95):,.0f} ms, "
        f"p99 {1000 * quantile(values, 0.99):,.0f} ms, max {1000 * max(values):,.0f} ms "
        f"(min {1000 * min(values):,.0f}, mean {1000 * statistics.fmean(values):,.0f}; "
        f"n={len(values):,})"
    )


def metric_summary(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> list[str]:
    """What the alerts process says about itself: passes, sends, transactions."""

    def total(metric: str, **labels: str) -> float:
        wanted = set(labels.items())
        return sum(
            value
            for (sample, sample_labels), value in samples.items()
            if sample == metric and wanted <= set(sample_labels)
        )

    lines = []
    passes = total("doisoat_dispatch_batch_duration_seconds_count")
    if passes:
        seconds = total("doisoat_dispatch_batch_duration_seconds_sum")
        lines.append(
            f"dispatcher passes {passes:,.0f}, mean {1000 * seconds / passes:.1f} ms, "
            f"{seconds:.1f} s in passes"
        )
    for channel in ("email", "zalo_oa", "zalo_zns"):
        count = total("doisoat_notification_send_duration_seconds_count", channel=channel)
        if count:
            seconds = total("doisoat_notification_send_duration_seconds_sum", channel=channel)
            lines.append(
                f"{channel}: {count:,.0f} send attempts, mean {1000 * seconds / count:.2f} ms "
                f"each (render excluded), {seconds:.1f} s in sends"
            )
    for name in ("alerts_dispatch", "reconcile", "zalo_token_save", "alert_tracks"):
        count = total("doisoat_db_transaction_duration_seconds_count", name=name)
        if count:
            seconds = total("doisoat_db_transaction_duration_seconds_sum", name=name)
            lines.append(
                f"transaction {name}: {count:,.0f}, mean {1000 * seconds / count:.1f} ms, "
                f"{seconds:.1f} s"
            )
    return lines


def scrape(process: ServiceProcess) -> list[str]:
    try:
        return metric_summary(process.metrics())
    except Exception as error:  # the figures above stand without these
        return [f"/metrics unavailable: {type(error).__name__}: {error}"]


def py_spy_summary(path: Path, wall: float, top: int = 18) -> list[str]:
    """Self and inclusive shares of the non-idle samples of py-spy's raw output."""
    stacks = read_stacks([path])
    if not stacks.total:
        return [f"py-spy {path.name}: no samples"]
    lines = [
        f"py-spy {path.name}: {stacks.total:,} non-idle samples at {PY_SPY_RATE} Hz ≈ "
        f"{100 * stacks.total / (PY_SPY_RATE * wall):.0f} % of one core over {wall:.1f} s",
        f"  top {top} by self samples:",
    ]
    lines += stacks.ranked(stacks.own.most_common(top), "    ")
    lines.append(f"  top {top} by inclusive samples (project code and libraries):")
    skip = ("<module>", "typer/", "asyncio/", "services/app/cli.py")
    chosen = [
        (frame, n) for frame, n in stacks.inclusive.most_common() if not frame.startswith(skip)
    ]
    lines += stacks.ranked(chosen[:top], "    ")
    return lines


def codes_of_mail(raw: bytes) -> list[str]:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    body = message.get_body(preferencelist=("plain",))
    plain = body.get_content() if body is not None else ""
    return list(dict.fromkeys(CODE_RE.findall(f"{message['Subject']}\n{plain}")))


def message_id_of(raw: bytes) -> str:
    header = BytesParser(policy=policy.compat32).parsebytes(raw, headersonly=True)
    return str(header.get("Message-ID", ""))


def windows(
    codes: Sequence[str], first: dict[str, float], opened: dict[str, float], size: int
) -> str:
    """Latency per slice of ``size`` codes (10 s of production): shows stalls and drift."""
    parts = []
    for start in range(0, len(codes), size):
        values = [first[c] - opened[c] for c in codes[start : start + size] if c in first]
        parts.append(
            f"{1000 * statistics.median(values):.0f}/{1000 * max(values):.0f}" if values else "-"
        )
    return " ".join(parts)


def first_and_count_mail(
    accepted: Sequence[tuple[float, str, bytes]],
) -> tuple[dict[str, float], Counter[str]]:
    first: dict[str, float] = {}
    seen: Counter[str] = Counter()
    for at, _, raw in accepted:
        for code in codes_of_mail(raw):
            seen[code] += 1
            first[code] = min(first.get(code, at), at)
    return first, seen


def first_and_count_zalo(
    messages: Sequence[dict[str, Any]],
) -> tuple[dict[str, float], Counter[str]]:
    first: dict[str, float] = {}
    seen: Counter[str] = Counter()
    for message in messages:
        at = message["accepted_at"]
        for code in dict.fromkeys(CODE_RE.findall(message.get("text", ""))):
            seen[code] += 1
            first[code] = min(first.get(code, at), at)
    return first, seen
