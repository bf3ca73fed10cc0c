"""A database of its own for each run, on the test server, and small queries around it.

The server is ``tests.support.postgres.server_url()``: ``DOISOAT_TEST_DATABASE_URL`` (default
``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``) if it answers, else a throwaway
cluster. A fresh database means no run sees another's rows, and dropping it leaves nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common.console import ignore_interrupts, say
from bench.common.figures import Report
from shared import migrate
from shared.db import create_engine
from tests.support.postgres import create_database, database_url, drop_database, server_url


class BenchDatabase:
    """Database ``name`` on the test server, migrated to head; ``created`` says what to drop.

    Synchronous and asynchronous spellings: the scripts' main threads have no event loop, while
    ``migrate.upgrade`` runs one of its own and so must leave a running loop's thread.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.server = server_url()
        self.created = False

    @property
    def url(self) -> str:
        return database_url(self.server, self.name)

    def create(self) -> str:
        """Create and migrate from code without a running event loop; returns the URL."""
        asyncio.run(create_database(self.server, self.name))
        self.created = True
        migrate.upgrade(self.url)
        return self.url

    async def create_async(self) -> str:
        """Create and migrate from inside an event loop; returns the URL."""
        await create_database(self.server, self.name)
        self.created = True
        await asyncio.to_thread(migrate.upgrade, self.url)
        return self.url

    def drop(self) -> None:
        if self.created:
            asyncio.run(drop_database(self.server, self.name))
            self.created = False

    async def drop_async(self) -> None:
        if self.created:
            await drop_database(self.server, self.name)
            self.created = False


@contextlib.contextmanager
def fresh_database(prefix: str, keep: bool) -> Iterator[str]:
    """A migrated ``{prefix}_xxxxxxxx`` database for the ``with`` body, dropped on the way out
    (also on Ctrl-C or SIGTERM) unless ``keep``; says which."""
    database = BenchDatabase(f"{prefix}_{uuid.uuid4().hex[:8]}")
    try:
        yield database.create()
    finally:
        ignore_interrupts()
        if database.created and keep:
            say(f"database kept: {database.url}")
        elif database.created:
            database.drop()
            say(f"database {database.name} dropped")


def run_on_fresh_database(
    body: Callable[[str], None], *, prefix: str, keep_db: bool, report: Report
) -> int:
    """A benchmark's ``main`` after its options: ``body(db_url)`` on a fresh database, then the
    duration and the failures; exit status 0, 1 (a target or check failed) or 130 (interrupted)."""
    started = time.perf_counter()
    try:
        with fresh_database(prefix, keep_db) as db_url:
            body(db_url)
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    say(f"benchmark took {time.perf_counter() - started:.0f} s")
    if report.failures:
        say("FAILED: " + "; ".join(report.failures))
        return 1
    return 0


async def postgres_summary(target: AsyncEngine | str, settings: Sequence[str]) -> str:
    """``15.4 (fsync=on, …)``: the server version and the settings that sway the figures.

    ``target`` is the run's engine, or a URL for a short-lived one of the project's factory.
    """
    engine = create_engine(target) if isinstance(target, str) else target
    try:
        async with engine.connect() as connection:
            version = (await connection.execute(text("SHOW server_version"))).scalar_one()
            values = []
            for name in settings:
                value = (await connection.execute(text(f"SHOW {name}"))).scalar_one()
                values.append(f"{name}={value}")
    finally:
        if engine is not target:
            await engine.dispose()
    return f"{version.split()[0]} ({', '.join(values)})"


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    """One value of a read-only query, on a connection of its own (outside any unit of work)."""
    async with engine.connect() as connection:
        return (await connection.execute(text(sql), params)).scalar_one()


async def fetch_all(engine: AsyncEngine, sql: str, **params: Any) -> Sequence[Any]:
    """All rows of a read-only query; ``dict(rows)`` for ``key, count`` queries."""
    async with engine.connect() as connection:
        return (await connection.execute(text(sql), params)).all()


async def autocommit(engine: AsyncEngine, sql: str) -> None:
    """Run ``sql`` outside a transaction: ``VACUUM`` refuses to run inside one."""
    async with engine.connect() as connection:
        direct = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await direct.execute(text(sql))
