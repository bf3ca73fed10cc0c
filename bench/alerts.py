"""Alerts benchmark: discrepancy → email / Zalo latency, and draining a backlog of notifications.

Against the local fakes (aiosmtpd on loopback, the Zalo HTTP fake), both running in this
process, and a fresh migrated PostgreSQL database on ``tests.support.postgres.server_url()``:

(a) latency — ``doisoat reconciler`` and ``doisoat alerts`` run as OS processes; this process
    commits ``--rate`` new discrepancies a second for ``--seconds`` seconds, each as one
    transaction the way a desk report arrives: a dossier row (status 4, a responsible handler
    with an email and a Zalo OA id), its desk report (returned a minute ago; grace 0, so the
    reconciler opens a critical RETURNED_BUT_OPEN at once) and its reconcile mark. Per
    discrepancy, the time from its ``opened_at`` to the fake SMTP server accepting the email
    that names its dossier code, and to the Zalo fake accepting the OA message; counts
    delivered vs opened and duplicates per dossier code. Target: p99 ≤ 2 s.
(b) backlog — ``--backlog`` pending notification rows (``not_before`` in the past, distinct
    recipients unless ``--recipients``) of one channel are inserted, then ``--processes``
    ``doisoat alerts`` processes are started and timed until every row is sent.

Group wait 0, Zalo quiet night off (00:00–00:00); critical discrepancies, so office hours do
not hold anything back. Peak RSS and CPU of the service processes are sampled. The database is
dropped at the end (unless ``--keep-db``), also on Ctrl-C or SIGTERM.

Run from the repository root: ``.venv/bin/python bench/alerts.py --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import uvicorn
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

if __package__ in (None, ""):  # run as a script (``python bench/alerts.py``): find ``tests``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO
from bench.common.console import comma_list, host_line, load_average, sigterm_as_interrupt
from bench.common.database import (
    autocommit,
    fetch_all,
    postgres_summary,
    run_on_fresh_database,
    scalar,
)
from bench.common.figures import Report, counts_text, cpu_shares, mib, quantile, target_verdict
from bench.common.pyspy import PY_SPY_RATE, read_stacks, start_py_spy, stop_py_spy
from bench.common.sampling import ProcessSampler
from services.alerts.channels.base import Recipient
from services.alerts.channels.email import EmailChannel, EmailSettings
from services.alerts.content import alert_content
from services.alerts.links import AckLinks
from services.alerts.worker import Renderer
from services.reconciler.schedule import mark_for_reconcile
from shared.db import create_engine, unit_of_work
from shared.logs import configure_logging
from shared.models import Dossier, FieldReport, Notification, Officer, Unit
from tests.fakes.smtp_server import FakeSmtpServer, RecordingHandler
from tests.fakes.zalo_server import FakeZaloServer
from tests.fakes.zalo_server import create_app as create_zalo_app
from tests.support.processes import ServiceProcess

LATENCY_TARGET_SECONDS = 2.0
SCRIPT = Path(__file__).resolve()

DESK = "motcua"  # desk officers (one per unit) report; no contact: only the handler is told
PROCEDURE = ("1.004227", "Đăng ký biến động quyền sử dụng đất, quyền sở hữu tài sản gắn liền")
CODE_RE = re.compile(r"\d{3}\.\d{2}\.\d{2}\.H08-\d{6}-\d{7}")
SECRET = "bench-alerts-secret-key-0123456789"


def unit_code(number: int) -> str:
    """The agency code of unit ``number`` (mã định danh shape, province H08)."""
    return f"000.{number // 100:02d}.{number % 100:02d}.H08"


def unit_name(code: str) -> str:
    return f"Chi nhánh Văn phòng đăng ký đất đai {code}"


def desk_of(unit: str) -> str:
    return f"{DESK}.{unit}"


def spread(values: Sequence[float]) -> str:
    if not values:
        return "no sample"
    return (
        f"p50 {1000 * quantile(values, 0.5):,.0f} ms, p95 {1000 * quantile(values, 0.95):,.0f} ms, "
        f"p99 {1000 * quantile(values, 0.99):,.0f} ms, max {1000 * max(values):,.0f} ms "
        f"(min {1000 * min(values):,.0f}, mean {1000 * statistics.fmean(values):,.0f}; "
        f"n={len(values):,})"
    )


# ------------------------------------------------------------------------------- the fakes


@dataclass
class TimedHandler(RecordingHandler):
    """The fake's recording handler, plus the wall-clock moment each DATA was accepted.

    The parent parses and records the message as it always does (that work is part of the
    fake's acceptance); the moment is taken just before the ``250`` goes back. Only the raw
    bytes are kept (the parsed copies of 10,000 messages would cost this process ~0.5 GB);
    dossier codes are read from them after the run.
    """

    accepted: list[tuple[float, str, bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        at = time.time()
        with self.lock:  # one event loop thread: the mail appended last is this one
            mail = self.received.pop()
            self.accepted.append((at, mail.rcpt_tos[0] if mail.rcpt_tos else "", mail.raw))
        return reply

    def take(self) -> list[tuple[float, str, bytes]]:
        with self.lock:
            return list(self.accepted)

    def count(self) -> int:
        with self.lock:
            return len(self.accepted)

    def clear(self) -> None:
        with self.lock:
            self.accepted.clear()
            self.received.clear()


class TimedList(list):  # type: ignore[type-arg]
    """``state.oa_messages`` / ``zns_messages`` of the Zalo fake, stamping each acceptance.

    The fake appends under its state lock, right before answering ``error: 0``.
    """

    def append(self, item: Any) -> None:
        if isinstance(item, dict):
            item["accepted_at"] = time.time()
        super().append(item)


@dataclass
class Fakes:
    smtp: FakeSmtpServer
    handler: TimedHandler
    zalo: FakeZaloServer

    def reset(self) -> None:
        self.handler.clear()
        with self.zalo.state.lock:
            self.zalo.state.oa_messages = TimedList()
            self.zalo.state.zns_messages = TimedList()

    def zalo_messages(self) -> list[dict[str, Any]]:
        with self.zalo.state.lock:
            return list(self.zalo.state.oa_messages)

    def zalo_count(self) -> int:
        with self.zalo.state.lock:
            return len(self.zalo.state.oa_messages)


class NoDelayZaloServer(FakeZaloServer):
    """The Zalo fake, listening on a socket asyncio recognises as TCP.

    The stock fake binds ``socket.socket(AF_INET, SOCK_STREAM)``: its ``proto`` is 0, so
    asyncio's transports skip ``TCP_NODELAY`` on the accepted connections
    (``base_events._set_nodelay`` wants ``IPPROTO_TCP``). uvicorn writes a response's headers
    and body separately, Nagle holds the body until the client's delayed ACK, and every
    request on a kept-alive connection takes ~44 ms — an artefact of the fake (a real Zalo
    front end does not do that). Same server otherwise; ``--stock-zalo-fake`` uses the original.
    """

    def start(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(create_zalo_app(self), log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the fake Zalo server did not start")
            time.sleep(0.01)
        self._server, self._thread = server, thread
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self.base_url


@contextlib.contextmanager
def running_fakes(stock_zalo: bool) -> Iterator[Fakes]:
    smtp = FakeSmtpServer()
    handler = TimedHandler()
    smtp.handler = handler
    smtp.start()
    zalo = FakeZaloServer() if stock_zalo else NoDelayZaloServer()
    try:
        zalo.start()
        fakes = Fakes(smtp, handler, zalo)
        fakes.reset()
        yield fakes
    finally:
        zalo.stop()
        smtp.stop()


def service_env(db_url: str, fakes: Fakes, args: argparse.Namespace) -> dict[str, str]:
    """The environment of every service process (reconciler and alerts alike)."""
    state = fakes.zalo.state
    env = {
        "DOISOAT_DATABASE_URL": db_url,
        "DOISOAT_SECRET_KEY": SECRET,
        "DOISOAT_PUBLIC_BASE_URL": "https://doisoat.tinh.gov.vn",
        "DOISOAT_RETURN_GRACE_MINUTES": "0",
        "DOISOAT_ALERT_GROUP_WAIT_SECONDS": "0",
        "DOISOAT_ZALO_QUIET_FROM": "00:00",  # an empty quiet night: Zalo at any hour
        "DOISOAT_ZALO_QUIET_UNTIL": "00:00",
        "DOISOAT_RECONCILE_POLL_SECONDS": str(args.poll),
        "DOISOAT_DISPATCH_POLL_SECONDS": str(args.poll),
        "DOISOAT_SMTP_HOST": fakes.smtp.host,
        "DOISOAT_SMTP_PORT": str(fakes.smtp.port),
        "DOISOAT_SMTP_SENDER": "Đối soát TTHC <doisoat@tinh.gov.vn>",
        "DOISOAT_ZALO_APP_ID": state.app_id,
        "DOISOAT_ZALO_SECRET_KEY": state.secret_key,
        "DOISOAT_ZALO_REFRESH_TOKEN": args.refresh_token,
        "DOISOAT_ZALO_ZNS_TEMPLATE_ID": "401234",
        "DOISOAT_ZALO_OA_API_BASE": fakes.zalo.base_url,
        "DOISOAT_ZALO_ZNS_API_BASE": fakes.zalo.base_url,
        "DOISOAT_ZALO_OAUTH_BASE": fakes.zalo.base_url,
    }
    if args.batch_size:
        env["DOISOAT_DISPATCH_BATCH_SIZE"] = str(args.batch_size)
    for name, value in os.environ.items():  # the caller's other DOISOAT_… (log level, …)
        if name.startswith("DOISOAT_") and not name.startswith("DOISOAT_TEST"):
            env.setdefault(name, value)  # never the database, the fakes or the settings above
    return env


# ---------------------------------------------------------------------------- measurements


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


# ---------------------------------------------------------------------------------- py-spy


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


# --------------------------------------------------------------------------------- database


async def seed_directory(engine: AsyncEngine, officers: Sequence[tuple[str, str]]) -> None:
    """Handlers ``(account, unit)`` with an email and a Zalo OA id; their units and desks."""
    now = datetime.now(UTC)
    async with unit_of_work(engine, "bench") as connection:
        known = set((await connection.execute(text("SELECT code FROM units"))).scalars().all())
        units = sorted({unit for _, unit in officers} - known)
        if units:
            await connection.execute(
                insert(Unit),
                [
                    {
                        "code": unit,
                        "name": unit_name(unit),
                        "parent_code": None,
                        "replaced_by": None,
                        "updated_at": now,
                    }
                    for unit in units
                ],
            )
        rows = [
            {
                "account": desk_of(unit),
                "full_name": f"Một cửa {unit}",
                "unit_code": unit,
                "role": "desk",
                "email": None,
                "zalo_user_id": None,
                "phone": None,
                "active": True,
                "updated_at": now,
            }
            for unit in units
        ]
        rows += [
            {
                "account": account,
                "full_name": f"Cán bộ {account}",
                "unit_code": unit,
                "role": "handler",
                "email": f"{account}@tinh.gov.vn",
                "zalo_user_id": f"zuid{account}",
                "phone": None,
                "active": True,
                "updated_at": now,
            }
            for account, unit in officers
        ]
        for start in range(0, len(rows), 5000):
            await connection.execute(insert(Officer), rows[start : start + 5000])
    await autocommit(engine, "ANALYZE")


async def outbox_counts(engine: AsyncEngine) -> dict[tuple[str, str], int]:
    rows = await fetch_all(
        engine, "SELECT channel, status, count(*) FROM notifications GROUP BY 1, 2"
    )
    return {(channel, status): count for channel, status, count in rows}


def describe_outbox(counts: dict[tuple[str, str], int]) -> str:
    return counts_text((f"{c} {s}", n) for (c, s), n in sorted(counts.items())) or "empty"


# --------------------------------------------------------------------------------- phases


@dataclass
class AlertsReport(Report):
    """The report, and the directory the service processes log into (printed at the start)."""

    logs: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-alerts-")))


@contextlib.contextmanager
def services(
    commands: Sequence[str], env: dict[str, str], logs: Path, tag: str
) -> Iterator[list[ServiceProcess]]:
    """Spawn ``doisoat <command>`` processes without waiting; stopped (SIGTERM) on the way out."""
    started: list[ServiceProcess] = []
    try:
        for index, command in enumerate(commands):
            log = logs / f"{tag}-{command}-{index}.log"
            started.append(ServiceProcess(command, env=env, log_path=log).start())
        yield started
    finally:
        for process in started:
            process.cleanup()


def check_alive(processes: Sequence[ServiceProcess]) -> None:
    for process in processes:
        if not process.is_running():
            raise RuntimeError(
                f"{process!r} exited with {process.returncode}:\n{process.log_tail()}"
            )


def codes_of_mail(raw: bytes) -> list[str]:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    body = message.get_body(preferencelist=("plain",))
    plain = body.get_content() if body is not None else ""
    return list(dict.fromkeys(CODE_RE.findall(f"{message['Subject']}\n{plain}")))


def message_id_of(raw: bytes) -> str:
    header = BytesParser(policy=policy.compat32).parsebytes(raw, headersonly=True)
    return str(header.get("Message-ID", ""))


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


async def commit_desk_report(engine: AsyncEngine, code: str, handler: str, unit: str) -> None:
    """One desk report arriving for a dossier the system still shows as processing."""
    now = datetime.now(UTC)
    async with unit_of_work(engine, "bench_desk_report") as connection:
        await connection.execute(
            insert(Dossier).values(
                code=code,
                status=4,
                unit_code=unit,
                procedure_code=PROCEDURE[0],
                procedure_name=PROCEDURE[1],
                channel=1,
                digitised=True,
                received_at=now - timedelta(days=5),
                due_at=now + timedelta(days=10),
                snapshot={"MaHoSo": code, "TrangThaiHoSo": 4, "ChuHoSo": "Nguyễn Văn An"},
                snapshot_emitted_at=now - timedelta(days=1),
                snapshot_event_id=f"s-{code}",
                latest_step_at=now - timedelta(days=1),
                responsible=handler,
            )
        )
        await connection.execute(
            insert(FieldReport).values(
                report_id=f"r-{code}",
                dossier_code=code,
                kind="returned",
                occurred_at=now - timedelta(minutes=1),
                officer=desk_of(unit),
                unit_code=unit,
                note=None,
                channel="api",
                received_at=now,
            )
        )
        await mark_for_reconcile(connection, [code], at=now)


async def insert_backlog(
    engine: AsyncEngine, count: int, recipients: int, channel: str, unit_count: int
) -> list[str]:
    """``count`` due pending rows of ``channel`` for ``recipients`` officers (round robin)."""
    accounts = [f"bk{number:06d}" for number in range(recipients)]
    units = [unit_code(number % unit_count) for number in range(recipients)]
    existing = await scalar(engine, "SELECT count(*) FROM officers WHERE account LIKE 'bk%'")
    if existing < recipients:
        await seed_directory(engine, list(zip(accounts, units, strict=True))[existing:])
    created = datetime.now(UTC) - timedelta(minutes=10)
    rows = []
    for number in range(count):
        account, unit = accounts[number % recipients], units[number % recipients]
        content = backlog_content(number, account, unit)
        address = f"{account}@tinh.gov.vn" if channel == "email" else f"zuid{account}"
        rows.append(
            {
                "discrepancy_id": number + 1,
                "purpose": "opened",
                "severity": "critical",
                "recipient": account,
                "channel": channel,
                "address": address,
                "unit_code": unit,
                "content": content,
                "status": "pending",
                "not_before": created,
                "attempts": 0,
                "created_at": created,
            }
        )
    async with unit_of_work(engine, "bench") as connection:
        await connection.execute(text("TRUNCATE notifications"))
        for start in range(0, len(rows), 2000):
            await connection.execute(insert(Notification), rows[start : start + 2000])
    await autocommit(engine, "VACUUM ANALYZE notifications")
    return accounts


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


# ------------------------------------------------------------------------------ calibration


def backlog_content(number: int, account: str, unit: str) -> dict[str, Any]:
    """The stored content of one "opened" alert (what the planner would have written)."""
    occurred = datetime.now(UTC) - timedelta(hours=1)
    code = f"{unit}-000000-{number:07d}"
    discrepancy = {
        "id": number + 1,
        "dossier_code": code,
        "kind": "RETURNED_BUT_OPEN",
        "severity": "critical",
        "unit_code": unit,
        "since": occurred,
        "responsible": account,
        "details": {
            "report_id": f"r-{code}",
            "desk_kind": "returned",
            "occurred_at": occurred.isoformat(),
            "officer": desk_of(unit),
            "system_status": 4,
            "grace_minutes": 0,
        },
    }
    dossier = {"procedure_name": PROCEDURE[1], "status": 4, "snapshot": {}}
    content = alert_content(discrepancy=discrepancy, dossier=dossier, unit_name=unit_name(unit))
    content["responsible_name"] = f"Cán bộ {account}"
    return content


async def _probe(kind: str, target: str, token: str, count: int) -> list[str]:
    """Child process: the rungs below the service, against the same fakes (see README)."""
    configure_logging("INFO")  # the service logs every send at INFO, so do the rungs
    render = Renderer(AckLinks(SECRET, "https://doisoat.tinh.gov.vn", timedelta(hours=168)))
    channel_name = "email" if kind == "smtp" else "zalo_oa"

    def message(number: int) -> Any:
        account = f"pr{number:06d}"
        recipient = Recipient(
            account, f"Cán bộ {account}", f"{account}@tinh.gov.vn", f"zuid{account}", None
        )
        content = backlog_content(number, account, unit_code(number % 50))
        return render("opened", [content], recipient, str(number + 1), channel_name)

    lines = []
    started = time.perf_counter()
    rendered = [message(number) for number in range(count)]
    lines.append(
        f"render only (Jinja + ack link): {count / (time.perf_counter() - started):,.0f}/s"
    )
    if kind == "smtp":
        host, port = target.rsplit(":", 1)
        settings = EmailSettings(host=host, port=int(port), sender="Đối soát <doisoat@tinh.gov.vn>")
        channel = EmailChannel(settings)
        raws = [
            bytes(channel.build_message(item).as_bytes(policy=policy.SMTP)) for item in rendered
        ]
        smtp = aiosmtplib.SMTP(hostname=host, port=int(port))
        await smtp.connect()
        started = time.perf_counter()
        for item, raw in zip(rendered, raws, strict=True):
            await smtp.sendmail("doisoat@tinh.gov.vn", [item.recipient.email], raw)
        elapsed = time.perf_counter() - started
        lines.append(
            f"aiosmtplib sendmail(prebuilt bytes), one connection: {count / elapsed:,.0f}/s"
        )
        started = time.perf_counter()
        for item in rendered:
            await smtp.send_message(channel.build_message(item))
        elapsed = time.perf_counter() - started
        lines.append(f"build_message + aiosmtplib send_message: {count / elapsed:,.0f}/s")
        await smtp.quit()
        started = time.perf_counter()
        for item in rendered:
            await channel.send(item)
        elapsed = time.perf_counter() - started
        lines.append(f"EmailChannel.send (pre-rendered): {count / elapsed:,.0f}/s")
        started = time.perf_counter()
        for number in range(count):
            await channel.send(message(number))
        elapsed = time.perf_counter() - started
        lines.append(f"render + EmailChannel.send: {count / elapsed:,.0f}/s")
        await channel.aclose()
    else:
        async with httpx.AsyncClient(timeout=10) as client:
            semaphore = asyncio.Semaphore(4)

            async def post(item: Any) -> None:
                async with semaphore:
                    response = await client.post(
                        f"{target}/v3.0/oa/message/cs",
                        json={
                            "recipient": {"user_id": item.recipient.zalo_user_id},
                            "message": {"text": item.text},
                        },
                        headers={"access_token": token},
                    )
                    if response.json().get("error") != 0:
                        raise RuntimeError(response.text)

            started = time.perf_counter()
            await asyncio.gather(*(post(item) for item in rendered))
            elapsed = time.perf_counter() - started
            lines.append(f"httpx POST, 4 in flight (pre-rendered): {count / elapsed:,.0f}/s")
    return lines


def probe_main(argv: list[str]) -> int:
    kind, target, token, count = argv
    for line in asyncio.run(_probe(kind, target, token, int(count))):
        print(line, flush=True)
    return 0


async def calibrate(fakes: Fakes, channel: str, count: int, report: AlertsReport) -> None:
    """The ladder below the service on the same fakes and load, from a child process."""
    if channel == "email":
        kind, target, token = "smtp", f"{fakes.smtp.host}:{fakes.smtp.port}", "-"
    else:
        kind, target = "zalo", fakes.zalo.base_url
        token = fakes.zalo.state.issue_access_token()
    command = [sys.executable, str(SCRIPT), "--probe", kind, target, token]
    child = await asyncio.create_subprocess_exec(
        *command,
        str(count),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=REPO,
    )
    output, _ = await child.communicate()
    report.add(
        f"    calibration, {count:,} {channel} messages from a child process "
        f"(load {load_average()}):"
    )
    for line in output.decode().splitlines():
        report.add(f"      {line}")
    if child.returncode:
        report.add(f"      probe failed with status {child.returncode}")
    fakes.reset()


# ----------------------------------------------------------------------------------- main


async def run(args: argparse.Namespace, db_url: str, report: AlertsReport) -> None:
    engine = create_engine(db_url)
    try:
        settings = ("shared_buffers", "synchronous_commit", "fsync")
        report.add("PostgreSQL " + await postgres_summary(engine, settings))
        report.add(f"{host_line()}; service logs in {report.logs}")
        report.add()
        with running_fakes(args.stock_zalo_fake) as fakes:
            args.refresh_token = fakes.zalo.state.issue_refresh_token()
            if "latency" in args.phases:
                await latency_phase(engine, db_url, fakes, args, report)
            if "backlog" in args.phases:
                for channel in args.channel:
                    if args.calibrate:
                        report.add(f"(b) {channel}: what the pieces below the service do")
                        await calibrate(fakes, channel, args.calibrate, report)
                        report.add()
                    for processes in args.processes:
                        await backlog_phase(
                            engine,
                            db_url,
                            fakes,
                            args,
                            report,
                            channel=channel,
                            processes=processes,
                        )
    finally:
        await engine.dispose()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rate", type=int, default=50, help="(a) discrepancies opened a second")
    parser.add_argument("--seconds", type=int, default=60, help="(a) how long they open")
    parser.add_argument(
        "--handlers", type=int, default=0, help="(a) handlers shared round robin (0: one each)"
    )
    parser.add_argument(
        "--units", type=int, default=50, help="units the handlers and recipients belong to"
    )
    parser.add_argument("--backlog", type=int, default=10_000, help="(b) pending rows")
    parser.add_argument(
        "--recipients", type=int, default=0, help="(b) distinct recipients (0: one per row)"
    )
    parser.add_argument(
        "--channel",
        type=comma_list(str, ("email", "zalo_oa")),
        default=["email", "zalo_oa"],
        help="(b) channel of the backlog rows, comma-separated for several runs",
    )
    parser.add_argument(
        "--processes",
        type=comma_list(int),
        default=[1, 2],
        help="(b) `doisoat alerts` processes, comma-separated for several runs",
    )
    parser.add_argument(
        "--phases",
        type=comma_list(str, ("latency", "backlog")),
        default=["latency", "backlog"],
        help="which phases to run",
    )
    parser.add_argument(
        "--poll", type=float, default=0.05, help="DOISOAT_RECONCILE/DISPATCH_POLL_SECONDS"
    )
    parser.add_argument(
        "--batch-size", type=int, default=0, help="DOISOAT_DISPATCH_BATCH_SIZE (0: default)"
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=300.0, help="seconds to wait for delivery"
    )
    parser.add_argument(
        "--py-spy", type=Path, default=None, metavar="DIR", help="record the services into DIR"
    )
    parser.add_argument(
        "--stock-zalo-fake",
        action="store_true",
        help="the Zalo fake as it is (no TCP_NODELAY: ~44 ms a request, see NoDelayZaloServer)",
    )
    parser.add_argument(
        "--calibrate",
        type=int,
        default=2000,
        help="(b) messages of the calibration ladder per channel (0: none)",
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    if args.rate < 1 or args.seconds < 1 or args.backlog < 1 or not 1 <= args.units <= 9999:
        parser.error("--rate, --seconds, --backlog and --units (≤ 9999) must be positive")
    if any(count < 1 for count in args.processes):
        parser.error("--processes must be positive")
    if args.py_spy is not None:
        args.py_spy.mkdir(parents=True, exist_ok=True)
    return args


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["--probe"]:  # the calibration child (internal)
        return probe_main(arguments[1:])
    args = parse_args(argv)
    sigterm_as_interrupt()
    report = AlertsReport()
    return run_on_fresh_database(
        lambda db_url: asyncio.run(run(args, db_url, report)),
        prefix="bench_alerts",
        keep_db=args.keep_db,
        report=report,
    )


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
