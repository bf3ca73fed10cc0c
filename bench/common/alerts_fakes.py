"""The alerts benchmark's fakes and processes: the SMTP and Zalo fakes stamping each message
as it is accepted, and the ``doisoat`` service processes pointed at them."""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common.alerts_world import SECRET
from tests.fakes.smtp_server import FakeSmtpServer, RecordingHandler
from tests.fakes.zalo_server import FakeZaloServer
from tests.support.processes import ServiceProcess


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

    socket_protocol = socket.IPPROTO_TCP


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
