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
import sys
import time
from datetime import timedelta
from email import policy
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx

if __package__ in (None, ""):  # run as a script (``python bench/alerts.py``): find ``tests``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO
from bench.common.alerts_fakes import Fakes, running_fakes
from bench.common.alerts_phases import AlertsReport, backlog_phase, latency_phase
from bench.common.alerts_world import SECRET, backlog_content, unit_code
from bench.common.console import comma_list, host_line, load_average, sigterm_as_interrupt
from bench.common.database import (
    postgres_summary,
    run_on_fresh_database,
)
from services.alerts.channels.base import Recipient
from services.alerts.channels.email import EmailChannel, EmailSettings
from services.alerts.links import AckLinks
from services.alerts.worker import Renderer
from shared.db import create_engine
from shared.logs import configure_logging

SCRIPT = Path(__file__).resolve()


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
