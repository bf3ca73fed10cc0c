"""The alerts benchmark's two phases: (a) discrepancy → email / Zalo latency, (b) draining a
backlog of notifications."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common.alerts_fakes import Fakes, check_alive, service_env, services
from bench.common.alerts_readings import (
    first_and_count_mail,
    first_and_count_zalo,
    message_id_of,
    py_spy_summary,
    scrape,
    spread,
    windows,
)
from bench.common.alerts_world import (
    commit_desk_report,
    describe_outbox,
    insert_backlog,
    outbox_counts,
    seed_directory,
    unit_code,
)
from bench.common.console import load_average
from bench.common.database import (
    scalar,
)
from bench.common.figures import Report, cpu_shares, mib, quantile, target_verdict
from bench.common.pyspy import start_py_spy, stop_py_spy
from bench.common.sampling import ProcessSampler

LATENCY_TARGET_SECONDS = 2.0


@dataclass
class AlertsReport(Report):
    """The report, and the directory the service processes log into (printed at the start)."""

    logs: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-alerts-")))


async def latency_phase(
    engine: AsyncEngine, db_url: str, fakes: Fakes, args: argparse.Namespace, report: AlertsReport
) -> None:
    total = args.rate * args.seconds
    handlers = args.handlers or total
    accounts = [f"hd{number:06d}" for number in range(handlers)]
    units = [unit_code(number % args.units) for number in range(handlers)]  # by handler
    await seed_directory(engine, list(zip(accounts, units, strict=True)))
    fakes.reset()
    env = service_env(db_url, fakes, args)
    report.add(
        f"(a) latency: {args.rate}/s for {args.seconds} s = {total:,} discrepancies, "
        f"{handlers:,} handler(s) in {min(args.units, handlers)} unit(s), poll {args.poll} s, "
        f"`doisoat reconciler` + `doisoat alerts`; load {load_average()}"
    )
    tag = datetime.now().strftime("%y%m%d")
    codes = [f"{units[number % handlers]}-{tag}-{number:07d}" for number in range(total)]
    committed: dict[str, float] = {}
    spies: list[tuple[subprocess.Popen[bytes], Path]] = []
    with services(["alerts", "reconciler"], env, report.logs, "latency") as (alerts, reconciler):
        for process in (alerts, reconciler):
            await asyncio.to_thread(process.wait_healthy, 60.0)
        sampler = ProcessSampler({"alerts": alerts.pid, "reconciler": reconciler.pid})
        sampler.start()
        cpu_before = sampler.cpu()
        own_before = time.process_time()
        if args.py_spy is not None:
            for name, process in (("alerts", alerts), ("reconciler", reconciler)):
                out = args.py_spy / f"latency-{name}.txt"
                spies.append((start_py_spy(process.pid, out), out))
        loop = asyncio.get_running_loop()
        started = loop.time()
        behind = 0.0
        wall_started = time.time()
        for number, code in enumerate(codes):
            due = started + number / args.rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                behind = max(behind, -delay)
            handler = number % handlers
            await commit_desk_report(engine, code, accounts[handler], units[handler])
            committed[code] = time.time()
            if number % (args.rate * 5) == 0:
                check_alive([alerts, reconciler])
        produced = time.time() - wall_started
        report.add(
            f"    produced {total:,} in {produced:.1f} s ({total / produced:.1f}/s), "
            f"producer at most {1000 * behind:.0f} ms behind schedule"
        )
        deadline = time.monotonic() + args.drain_timeout
        while time.monotonic() < deadline:
            check_alive([alerts, reconciler])
            opened = await scalar(engine, "SELECT count(*) FROM discrepancies")
            pending = await scalar(
                engine, "SELECT count(*) FROM notifications WHERE status = 'pending'"
            )
            due_marks = await scalar(
                engine, "SELECT count(*) FROM reconcile_schedule WHERE check_at <= now()"
            )
            if opened >= total and pending == 0 and due_marks == 0:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # anything sent twice would arrive now
        wall = time.time() - wall_started
        cpu_after = sampler.cpu()
        own_cpu = time.process_time() - own_before
        for spy, _ in spies:
            stop_py_spy(spy)
        sampler.stop()
        metric_lines = scrape(alerts)
        reconcile_lines = scrape(reconciler)
    # -- figures
    async with engine.connect() as connection:
        opened_at = {
            code: moment.timestamp()
            for code, moment in (
                await connection.execute(text("SELECT dossier_code, opened_at FROM discrepancies"))
            ).all()
        }
        kinds: dict[str, int] = dict(
            (
                await connection.execute(
                    text("SELECT kind || '/' || severity, count(*) FROM discrepancies GROUP BY 1")
                )
            ).all()
        )
        sent_delay = defaultdict(list)
        for channel, delay in (
            await connection.execute(
                text(
                    "SELECT n.channel, extract(epoch FROM n.sent_at - d.opened_at) FROM "
                    "notifications n JOIN discrepancies d ON d.id = n.discrepancy_id "
                    "WHERE n.status = 'sent'"
                )
            )
        ).all():
            sent_delay[channel].append(float(delay))
    outbox = await outbox_counts(engine)
    email_at, email_seen = first_and_count_mail(fakes.handler.take())
    zalo_at, zalo_seen = first_and_count_zalo(fakes.zalo_messages())
    pickup = [opened_at[c] - committed[c] for c in codes if c in opened_at]
    report.add(f"    discrepancies opened {len(opened_at):,} of {total:,}: {kinds}")
    report.add(f"    outbox: {describe_outbox(outbox)}")
    report.add(
        f"    desk commit → opened_at (reconciler pick-up, not in the target): {spread(pickup)}"
    )
    for channel, first, seen, rows in (
        ("email", email_at, email_seen, "email"),
        ("Zalo OA", zalo_at, zalo_seen, "zalo_oa"),
    ):
        latencies = [first[c] - opened_at[c] for c in opened_at if c in first]
        lost = [c for c in opened_at if c not in first]
        twice = {c: n for c, n in seen.items() if n > 1}
        stray = [c for c in first if c not in opened_at]
        p99 = quantile(latencies, 0.99) if latencies else float("inf")
        report.add(
            f"    opened_at → {channel} accepted: {spread(latencies)}  "
            + target_verdict(p99 <= LATENCY_TARGET_SECONDS, f"p99 ≤ {LATENCY_TARGET_SECONDS:.0f} s")
        )
        report.add(
            f"        delivered {len(latencies):,} of {len(opened_at):,} opened; lost {len(lost)}, "
            f"duplicated {len(twice)}, unknown codes {len(stray)}; "
            f"outbox sent_at − opened_at: {spread(sent_delay.get(rows, []))}"
        )
        report.add(
            "        by 10 s of production (p50 / max ms): "
            + windows(codes, first, opened_at, args.rate * 10)
        )
        if p99 > LATENCY_TARGET_SECONDS:
            report.failures.append(f"(a) {channel} p99 {p99:.2f} s > {LATENCY_TARGET_SECONDS} s")
        if lost or twice or len(opened_at) != total:
            report.failures.append(
                f"(a) {channel}: opened {len(opened_at)}/{total}, lost {len(lost)}, "
                f"twice {len(twice)}"
            )
    cpu = {name: cpu_after.get(name, 0.0) - cpu_before.get(name, 0.0) for name in cpu_before}
    report.add(
        f"    peak RSS: alerts {mib(sampler.peak['alerts'])}, reconciler "
        f"{mib(sampler.peak['reconciler'])}; CPU over {wall:.0f} s: "
        + cpu_shares({**cpu, "this process (producer + fakes)": own_cpu}, wall)
    )
    for line in metric_lines:
        report.add(f"    alerts {line}")
    for line in reconcile_lines:
        if "reconcile" in line:
            report.add(f"    reconciler {line}")
    for _, out in spies:
        for line in py_spy_summary(out, wall):
            report.add(f"    {line}")
    report.add(f"    load at the end {load_average()}")
    report.add()


async def backlog_phase(
    engine: AsyncEngine,
    db_url: str,
    fakes: Fakes,
    args: argparse.Namespace,
    report: AlertsReport,
    *,
    channel: str,
    processes: int,
) -> None:
    recipients = args.recipients or args.backlog
    seeding = time.perf_counter()
    await insert_backlog(engine, args.backlog, recipients, channel, args.units)
    seeded = time.perf_counter() - seeding
    fakes.reset()
    env = service_env(db_url, fakes, args)
    report.add(
        f"(b) backlog: {args.backlog:,} pending {channel} rows for {recipients:,} recipient(s) "
        f"(inserted in {seeded:.1f} s), {processes} × `doisoat alerts`; load {load_average()}"
    )

    def delivered() -> int:
        return fakes.handler.count() if channel == "email" else fakes.zalo_count()

    spies: list[tuple[subprocess.Popen[bytes], Path]] = []
    spawned = time.time()
    with services(["alerts"] * processes, env, report.logs, f"backlog-{channel}-{processes}") as (
        alerts
    ):
        sampler = ProcessSampler({f"alerts#{i}": p.pid for i, p in enumerate(alerts)})
        sampler.start()
        own_before = time.process_time()
        if args.py_spy is not None:
            for index, process in enumerate(alerts):
                out = args.py_spy / f"backlog-{channel}-{processes}p-{index}.txt"
                spies.append((start_py_spy(process.pid, out), out))
        deadline = time.monotonic() + args.drain_timeout
        pending = args.backlog
        while time.monotonic() < deadline:
            check_alive(alerts)
            if delivered() >= args.backlog or pending == 0:
                pending = await scalar(
                    engine, "SELECT count(*) FROM notifications WHERE status = 'pending'"
                )
                if pending == 0:
                    break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # anything sent twice would arrive now
        wall = time.time() - spawned
        cpu = sampler.cpu()
        own_cpu = time.process_time() - own_before
        for spy, _ in spies:
            stop_py_spy(spy)
        sampler.stop()
        metric_lines = [line for process in alerts for line in scrape(process)]
    outbox = await outbox_counts(engine)
    sent = outbox.get((channel, "sent"), 0)
    groups = await scalar(
        engine, "SELECT count(DISTINCT group_id) FROM notifications WHERE status = 'sent'"
    )
    if channel == "email":
        accepted = fakes.handler.take()
        moments = [at for at, _, _ in accepted]
        ids = Counter(message_id_of(raw) for _, _, raw in accepted)
        twice = sum(n - 1 for n in ids.values() if n > 1)
        per_address = Counter(address for _, address, _ in accepted)
    else:
        messages = fakes.zalo_messages()
        moments = [message["accepted_at"] for message in messages]
        per_address = Counter(message["user_id"] for message in messages)
        twice = max(0, len(messages) - groups)
    if not moments:
        report.add("    nothing delivered")
        report.failures.append(f"(b) {channel} × {processes}: nothing delivered")
        return
    first, last = min(moments), max(moments)
    total = last - spawned
    steady = max(last - first, 1e-9)
    report.add(
        f"    {sent:,} rows sent as {len(moments):,} messages ({groups:,} groups recorded); "
        f"outbox {describe_outbox(outbox)}; duplicates {twice}; "
        f"{len(per_address):,} addresses, most messages to one {max(per_address.values())}"
    )
    report.add(
        f"    spawn → last accepted {total:.2f} s: {sent / total:,.0f} notifications/s, "
        f"{len(moments) / total:,.0f} messages/s"
    )
    report.add(
        f"    first → last accepted {steady:.2f} s (startup {first - spawned:.2f} s excluded): "
        f"{sent / steady:,.0f} notifications/s, {len(moments) / steady:,.0f} messages/s"
    )
    report.add(
        "    peak RSS "
        + ", ".join(f"{name} {mib(peak)}" for name, peak in sampler.peak.items())
        + f"; CPU over {wall:.1f} s: "
        + cpu_shares({**cpu, "this process (fakes)": own_cpu}, wall)
    )
    for line in metric_lines:
        report.add(f"    {line}")
    for _, out in spies:
        for line in py_spy_summary(out, wall):
            report.add(f"    {line}")
    if sent != args.backlog or twice or len(moments) != groups:
        report.failures.append(
            f"(b) {channel} × {processes}: sent {sent}/{args.backlog}, messages {len(moments)} "
            f"for {groups} groups, duplicates {twice}"
        )
    report.add(f"    load at the end {load_average()}")
    report.add()
