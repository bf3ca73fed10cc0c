"""Database plumbing: engine factory, UTC timestamps, and the one unit-of-work context manager.

Service functions never commit; whoever owns the unit of work (an HTTP request, a Kafka batch,
a sweep) opens it with :func:`unit_of_work`, which commits or rolls back exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Collection, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Integer,
    MetaData,
    String,
    any_,
    bindparam,
    event,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from shared import metrics

_T = TypeVar("_T")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonColumn = JSON().with_variant(JSONB(), "postgresql")
BigIntId = BigInteger().with_variant(Integer(), "sqlite")

#: Dossier codes and event ids on PostgreSQL: compared byte by byte (``COLLATE "C"``), in code
#: point order as Python and SQLite compare them, whatever locale the cluster was created with.
#: Under a language collation every index comparison of a key goes through ``strcoll`` (with
#: ``C.UTF-8`` too: with ``"C"`` the ingest statement wrote 5–13 % faster, migration 0012), and
#: the newest-snapshot tie-break on the event id could order differently from the portable path.
DossierCode = String(64).with_variant(String(64, collation="C"), "postgresql")
EventId = String(128).with_variant(String(128, collation="C"), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware timestamps stored in UTC on every backend.

    SQLite keeps datetimes as text without an offset; normalising to UTC on the way in keeps
    its text comparisons (``ORDER BY``, row-value ``<``) in the same order as PostgreSQL's.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: attach a timezone first")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        """None on PostgreSQL: asyncpg already returns aware UTC datetimes, so the per-value
        call would change nothing (and costs a function call per value of a million rows)."""
        if dialect.name == "postgresql" and dialect.driver == "asyncpg":
            return None
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def among(connection: AsyncConnection, column: Any, values: Collection[str]) -> Any:
    """``column`` is one of ``values``: one array parameter on PostgreSQL, an IN list elsewhere.

    With ``IN ($1 … $1000)`` an asyncpg prepared statement may fall back to a generic plan that
    compares every candidate row with the whole list (seconds per chunk at a million dossiers)
    and SQLAlchemy renders a thousand binds each time; ``= ANY($1)`` is one parameter, one plan,
    and an index lookup per value.
    """
    if connection.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(String)))
    return column.in_(values)


def insert_for(connection: AsyncConnection | AsyncEngine, table: Any) -> Any:
    """An ``INSERT`` that knows ``ON CONFLICT`` on the connection's backend (PostgreSQL or SQLite).

    Both dialects spell ``on_conflict_do_nothing`` / ``on_conflict_do_update`` and ``excluded``
    alike, so callers write the upsert once.
    """
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _dump_json(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """Build the async engine; SQLite gets WAL, a busy timeout and foreign keys."""
    parsed = make_url(url)
    options.setdefault("json_serializer", _dump_json)
    # Statement parameters carry applicants' personal data: keep them out of error messages.
    options.setdefault("hide_parameters", True)
    options.setdefault("json_deserializer", orjson.loads)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **options)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    options.setdefault("pool_size", 10)
    options.setdefault("max_overflow", 20)
    options.setdefault("pool_pre_ping", True)
    if parsed.get_driver_name() == "asyncpg":
        # doisoat's statements are short or stream rows; PostgreSQL's JIT compiles for 100–300
        # ms whenever a plan's estimated cost crosses jit_above_cost and never wins it back here
        # (measured at 1,000,000 dossiers: 265 ms of the lateness report's 320 ms query, about
        # 100 ms of the province inbox's). A caller's own ``server_settings`` still win.
        connect_args = dict(options.pop("connect_args", {}))
        connect_args["server_settings"] = {"jit": "off", **connect_args.get("server_settings", {})}
        options["connect_args"] = connect_args
    return create_async_engine(url, **options)


@asynccontextmanager
async def unit_of_work(engine: AsyncEngine, name: str) -> AsyncIterator[AsyncConnection]:
    """One explicit transaction: commit on success, roll back on error, measured either way."""
    started = time.perf_counter()
    outcome = "rollback"
    try:
        async with engine.begin() as connection:
            yield connection
        outcome = "commit"
    finally:
        metrics.DB_TRANSACTIONS.labels(name=name, outcome=outcome).inc()
        metrics.DB_TRANSACTION_SECONDS.labels(name=name).observe(time.perf_counter() - started)


async def database_reachable(engine: AsyncEngine) -> bool:
    """Readiness probe: a trivial round trip."""
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


@asynccontextmanager
async def meanwhile(work: Coroutine[Any, Any, _T]) -> AsyncIterator[asyncio.Future[_T]]:
    """Run ``work`` (statements on a connection) while the block computes; await the future
    for its answer.

    The database works on another core: the block's Python overlaps the statement instead of
    following it. The block must not use that connection before it has awaited the future. If
    the block fails first, ``work`` is still awaited, so the connection is never left in the
    middle of a statement, and the block's error is the one raised.
    """
    future = asyncio.ensure_future(work)
    await asyncio.sleep(0)  # the task's first step sends its statement
    try:
        yield future
    finally:
        if not future.done():
            await asyncio.wait([future])
        if not future.cancelled():
            future.exception()  # retrieved, so that asyncio does not log it as never retrieved
