"""Several dispatchers at once, and a dispatcher killed mid-batch: every row sent, none lost.

Row locks (PostgreSQL ``FOR UPDATE SKIP LOCKED``) keep concurrent dispatchers apart; a crash
between sending and committing costs at most one duplicate per row that was in flight.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.alerts.channels.email import EmailChannel, EmailSettings
from services.alerts.dispatcher import Dispatcher
from shared.db import create_engine
from tests.fakes.smtp_server import FakeSmtpServer
from tests.services.alerts.dispatch.conftest import (
    MutableClock,
    add_rows,
    message_row_id,
    outbox_rows,
)
from tests.services.alerts.dispatch.plain_render import render
from tests.services.alerts.dispatch.tuning import dispatch_settings

REPO = Path(__file__).resolve().parents[4]


def email_rows(count: int, **extra: object) -> list[dict[str, object]]:
    return [
        {
            "recipient": f"canbo{n:04d}",
            "channel": "email",
            "address": f"canbo{n:04d}@tinh.gov.vn",
            **extra,
        }
        for n in range(count)
    ]


async def test_two_dispatchers_send_every_row_exactly_once(
    pg_database_url: str,
    email_settings: EmailSettings,
    smtp_server: FakeSmtpServer,
    clock: MutableClock,
) -> None:
    engines = [create_engine(pg_database_url) for _ in range(2)]
    channels = [EmailChannel(email_settings) for _ in range(2)]
    try:
        ids = await add_rows(engines[0], email_rows(500))
        dispatchers = [
            Dispatcher(
                engine=engine,
                clock=clock,
                channels={"email": channel},
                renderer=render,
                settings=dispatch_settings(batch_size=50),
            )
            for engine, channel in zip(engines, channels, strict=True)
        ]

        handled = await asyncio.gather(*(dispatcher.drain() for dispatcher in dispatchers))

        assert sum(handled) == 500 and min(handled) > 0, handled  # both took part
        assert await dispatchers[0].dispatch_once() == 0
        rows = await outbox_rows(engines[0])
    finally:
        for channel in channels:
            await channel.aclose()
        for engine in engines:
            await engine.dispose()
    mails = smtp_server.handler.messages()
    received = Counter(message_row_id(mail) for mail in mails)
    assert len(mails) == 500
    assert set(received) == {str(row_id) for row_id in ids}
    assert max(received.values()) == 1
    assert all(row.status == "sent" for row in rows.values())
    assert len({mail.peer for mail in mails}) == 2  # one SMTP connection per dispatcher


class RunnerProcess:
    """``run_dispatcher`` as a child process, wired to the test's database and SMTP server."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self._env = env
        self._log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("DOISOAT_")}
        environment.update(self._env)
        with self._log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "tests.services.alerts.dispatch.run_dispatcher"],
                cwd=REPO,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def signal(self, signum: int) -> int:
        assert self._proc is not None
        if self._proc.poll() is None:
            self._proc.send_signal(signum)
        return self._proc.wait(15)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        return self._log_path.read_text(errors="replace")[-4000:]


@pytest.fixture
def runner_factory(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], RunnerProcess]]:
    started: list[RunnerProcess] = []

    def make(env: dict[str, str]) -> RunnerProcess:
        process = RunnerProcess(env, tmp_path / f"dispatcher-{len(started)}.log")
        started.append(process)
        process.start()
        return process

    yield make
    for process in started:
        if process.alive():
            process.signal(signal.SIGKILL)


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, within: float, why: Callable[[], str]
) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(why())
        await asyncio.sleep(0.02)


@pytest.mark.slow
async def test_dispatcher_killed_mid_batch_restart_delivers_the_rest(
    database_url: str,
    smtp_server: FakeSmtpServer,
    runner_factory: Callable[[dict[str, str]], RunnerProcess],
) -> None:
    total, batch = 200, 20
    engine = create_engine(database_url)
    moment = datetime.now(UTC) - timedelta(seconds=1)  # the child runs on the real clock
    ids = await add_rows(engine, email_rows(total, not_before=moment, created_at=moment))
    env = {
        "DISPATCH_DATABASE_URL": database_url,
        "DISPATCH_SMTP_HOST": smtp_server.host,
        "DISPATCH_SMTP_PORT": str(smtp_server.port),
        "DISPATCH_BATCH_SIZE": str(batch),
        "DISPATCH_POLL_SECONDS": "0.05",
        "DISPATCH_LEASE_SECONDS": "2",  # SQLite: leased rows come back after 2 s
    }
    handler = smtp_server.handler
    handler.stall_seconds = 0.02  # a slow relay: the kill lands while a batch is in flight

    async def received(at_least: int) -> bool:
        return len(handler.messages()) >= at_least

    async def all_sent() -> bool:
        return all(row.status == "sent" for row in (await outbox_rows(engine)).values())

    try:
        first = runner_factory(env)
        await wait_until(lambda: received(2 * batch + batch // 2), within=60, why=first.log)
        assert first.signal(signal.SIGKILL) == -signal.SIGKILL
        await asyncio.sleep(0.3)  # a DATA already in the relay's hands still lands
        at_kill = Counter(message_row_id(mail) for mail in handler.messages())
        rows = await outbox_rows(engine)
        committed = {str(row_id) for row_id, row in rows.items() if row.status == "sent"}
        in_flight = set(at_kill) - committed  # delivered, but the kill beat the commit
        assert 0 < len(in_flight) <= batch, (len(in_flight), len(committed))
        assert max(at_kill.values()) == 1

        handler.stall_seconds = 0.0
        second = runner_factory(env)
        await wait_until(all_sent, within=60, why=second.log)
        assert second.signal(signal.SIGTERM) == 0, second.log()
    finally:
        await engine.dispose()

    final = Counter(message_row_id(mail) for mail in handler.messages())
    assert set(final) == {str(row_id) for row_id in ids}  # nothing lost
    duplicates = {row_id for row_id, count in final.items() if count > 1}
    assert max(final.values()) <= 2  # at most one duplicate each
    assert duplicates == in_flight  # exactly the rows in flight at the kill, once more
