"""Self-tests of the PostgreSQL test support: the fixtures are only as good as these."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from .postgres import (
    ThrowawayCluster,
    asyncpg_dsn,
    create_database,
    database_url,
    drop_database,
    find_bin_dir,
    server_url,
)


async def _database_exists(url: str, name: str) -> bool:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def test_create_clone_and_drop_database() -> None:
    server = await asyncio.to_thread(server_url)
    suffix = uuid.uuid4().hex[:10]
    name, clone = f"doisoat_selftest_{suffix}", f"doisoat_selftest_{suffix}_clone"
    try:
        await create_database(server, name)
        url = database_url(server, name)
        assert url.startswith("postgresql+asyncpg://") and url.endswith(f"/{name}")

        conn = await asyncpg.connect(asyncpg_dsn(url))
        await conn.execute("CREATE TABLE t (v int); INSERT INTO t VALUES (42)")
        # Left open on purpose: cloning and dropping must cope with lingering sessions.
        await create_database(server, clone, template=name)
        clone_conn = await asyncpg.connect(asyncpg_dsn(database_url(server, clone)))
        assert await clone_conn.fetchval("SELECT v FROM t") == 42

        await drop_database(server, clone)
        await drop_database(server, name)
        assert not await _database_exists(server, name)
        assert not await _database_exists(server, clone)
        assert conn.is_closed() or not await _still_usable(conn)
        await clone_conn.close(timeout=1)
        await drop_database(server, name)  # dropping a missing database is a no-op
    finally:
        await drop_database(server, clone)
        await drop_database(server, name)


async def _still_usable(conn: asyncpg.Connection) -> bool:
    try:
        await conn.fetchval("SELECT 1")
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        return False
    return True


async def test_throwaway_cluster_survives_stop_and_start() -> None:
    try:
        find_bin_dir()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    cluster = ThrowawayCluster()
    try:
        await asyncio.to_thread(cluster.start)
        url, port = cluster.url, cluster.port
        dsn = asyncpg_dsn(url)

        conn = await asyncpg.connect(dsn)
        await conn.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
        await conn.close()

        await asyncio.to_thread(cluster.stop)
        assert not cluster.is_running()
        with pytest.raises(OSError):  # ConnectionRefusedError
            await asyncpg.connect(dsn, timeout=2)

        await asyncio.to_thread(cluster.start)
        assert (cluster.url, cluster.port) == (url, port)
        conn = await asyncpg.connect(dsn)
        assert await conn.fetchval("SELECT v FROM kept") == "still here"
        await conn.close()

        await asyncio.to_thread(cluster.restart, "immediate")  # crash-style restart
        conn = await asyncpg.connect(dsn)
        assert await conn.fetchval("SELECT v FROM kept") == "still here"
        await conn.close()

        await asyncio.to_thread(cluster.stop)
        assert not cluster.is_running()
        base = cluster.base_dir
        assert base is not None and base.exists()
    finally:
        await asyncio.to_thread(cluster.cleanup)
    assert not base.exists()
