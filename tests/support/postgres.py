"""PostgreSQL for tests: an existing server if one answers, else a throwaway cluster.

Tests need a real PostgreSQL (advisory locks, ``ON CONFLICT``, ``FOR UPDATE SKIP
LOCKED`` behave differently elsewhere), but CI machines and laptops differ: some
run a server, some only have the binaries. This module hides that difference
behind :func:`server_url` and gives fault tests a cluster they may stop and start
at will (:class:`ThrowawayCluster`).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import glob
import logging
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar, cast

import asyncpg
from sqlalchemy.engine import make_url

__all__ = [
    "DEFAULT_SERVER_URL",
    "ENV_VAR",
    "PostgresUnavailableError",
    "ThrowawayCluster",
    "asyncpg_dsn",
    "create_database",
    "database_url",
    "drop_database",
    "find_bin_dir",
    "server_answers",
    "server_url",
]

log = logging.getLogger(__name__)

ENV_VAR = "DOISOAT_TEST_DATABASE_URL"
DEFAULT_SERVER_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
_OS_USER = "postgres"

_T = TypeVar("_T")


class PostgresUnavailableError(RuntimeError):
    """Neither a reachable server nor PostgreSQL binaries to start one."""


# --------------------------------------------------------------------------- URLs


def asyncpg_dsn(url: str) -> str:
    """asyncpg wants ``postgresql://``; the project passes SQLAlchemy URLs around."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def database_url(server_url: str, name: str) -> str:
    """SQLAlchemy URL of database ``name`` on the same server (same driver and credentials)."""
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def run_coro_blocking(factory: Callable[[], Awaitable[_T]]) -> _T:
    """Run a coroutine to completion from sync code, even when a loop is already running.

    ``server_url()`` is called from session fixtures that may live inside the
    pytest-asyncio loop, where ``asyncio.run`` would refuse; a private thread
    with its own loop works in both situations.
    """

    async def main() -> _T:
        return await factory()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


def server_answers(url: str, timeout: float = 2.0) -> bool:
    """True if a connection to ``url`` succeeds within ``timeout`` seconds."""

    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(asyncpg_dsn(url), timeout=timeout)
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            log.info("PostgreSQL at %s does not answer: %r", make_url(url), exc)
            return False
        await conn.close()
        return True

    return run_coro_blocking(probe)


# ------------------------------------------------------------------ server choice

_shared_lock = threading.Lock()
_shared_url: str | None = None
_shared_cluster: ThrowawayCluster | None = None


def server_url() -> str:
    """URL of the PostgreSQL server the test run should use (decided once per process).

    ``$DOISOAT_TEST_DATABASE_URL`` (default: local 5432) if it answers, otherwise a
    throwaway cluster started from the installed binaries and removed at exit.
    """
    global _shared_url, _shared_cluster
    with _shared_lock:
        if _shared_url is not None:
            return _shared_url
        url = os.environ.get(ENV_VAR) or DEFAULT_SERVER_URL
        if server_answers(url):
            _shared_url = url
            return url
        try:
            bin_dir = find_bin_dir()
        except PostgresUnavailableError as exc:
            raise PostgresUnavailableError(
                f"No PostgreSQL answers at {make_url(url)} (set ${ENV_VAR} to a reachable "
                f"server) and no PostgreSQL binaries were found to start one: {exc}"
            ) from None
        log.warning("PostgreSQL at %s unreachable; starting a throwaway cluster", make_url(url))
        cluster = ThrowawayCluster(bin_dir=bin_dir)
        cluster.start()
        _shared_cluster = cluster
        _shared_url = cluster.url
        return _shared_url


# ---------------------------------------------------------------- databases


async def _admin_connect(server_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(asyncpg_dsn(server_url), timeout=10)


async def _terminate_sessions(conn: asyncpg.Connection, name: str) -> None:
    await conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = $1 AND pid <> pg_backend_pid()",
        name,
    )


async def create_database(server_url: str, name: str, template: str | None = None) -> None:
    """Create database ``name``, optionally cloned from ``template``.

    Sessions still open on the template (e.g. a pooled migration engine) would make
    ``CREATE DATABASE ... TEMPLATE`` fail, so they are terminated first.
    """
    conn = await _admin_connect(server_url)
    try:
        sql = f"CREATE DATABASE {_quote_ident(name)}"
        if template is not None:
            await _terminate_sessions(conn, template)
            sql += f" TEMPLATE {_quote_ident(template)}"
        await conn.execute(sql)
    finally:
        await conn.close()


async def drop_database(server_url: str, name: str) -> None:
    """Drop database ``name`` if it exists, kicking out whoever is still connected."""
    conn = await _admin_connect(server_url)
    try:
        await _terminate_sessions(conn, name)
        version = conn.get_server_version()
        force = " WITH (FORCE)" if version.major >= 13 else ""
        await conn.execute(f"DROP DATABASE IF EXISTS {_quote_ident(name)}{force}")
    finally:
        await conn.close()


# ---------------------------------------------------------- throwaway cluster


def find_bin_dir() -> Path:
    """Directory holding ``initdb``, ``pg_ctl`` and ``postgres``.

    ``$PATH`` first (following symlinks such as /usr/local/bin/initdb, so the
    ``postgres`` binary next to it is found), then Debian's /usr/lib/postgresql/*/bin,
    newest major version first.
    """
    candidates: list[Path] = []
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(os.path.realpath(found)).parent)
    versioned = glob.glob("/usr/lib/postgresql/*/bin")

    def major(path: str) -> float:
        try:
            return float(Path(path).parent.name)
        except ValueError:
            return 0.0

    candidates += [Path(p) for p in sorted(versioned, key=major, reverse=True)]
    for cand in candidates:
        if all((cand / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
            return cand
    looked = ", ".join(str(c) for c in candidates) or "none on PATH or /usr/lib/postgresql/*/bin"
    raise PostgresUnavailableError(f"initdb/pg_ctl/postgres not found (looked in: {looked})")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        # getsockname() is typed Any; an AF_INET socket answers (host, port).
        return cast(int, sock.getsockname()[1])


class ThrowawayCluster:
    """A private PostgreSQL cluster in a temp dir, on a fixed loopback port.

    ``stop()``/``start()`` keep the data directory and the port, so fault tests
    can take the database away under a running service and bring it back with the
    same URL. ``cleanup()`` (also run at exit, and by a watchdog if this process
    dies without running ``atexit``) stops it and deletes everything.
    """

    def __init__(self, bin_dir: Path | str | None = None, port: int | None = None) -> None:
        self.bin_dir = Path(bin_dir) if bin_dir is not None else find_bin_dir()
        self.port = port if port is not None else _free_port()
        self.base_dir: Path | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._cleaned = False
        self._lock = threading.Lock()

    # -- paths and URL

    @property
    def data_dir(self) -> Path:
        return self._base() / "data"

    @property
    def socket_dir(self) -> Path:
        return self._base()

    @property
    def log_path(self) -> Path:
        """Server log; read it when a test fails mysteriously."""
        return self._base() / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{_OS_USER}@127.0.0.1:{self.port}/postgres"

    def _base(self) -> Path:
        if self.base_dir is None:
            raise RuntimeError("cluster not initialised yet; call start() first")
        return self.base_dir

    # -- running commands as the postgres OS user

    def _as_owner(self, argv: list[str]) -> list[str]:
        """initdb and postgres refuse to run as root; drop to the postgres user."""
        if os.geteuid() != 0:
            return argv
        if shutil.which("runuser"):
            return ["runuser", "-u", _OS_USER, "--", *argv]
        return ["su", _OS_USER, "-s", "/bin/sh", "-c", shlex.join(argv)]

    def _run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self._as_owner(argv),
            cwd=self._base(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and proc.returncode != 0:
            tail = self._log_tail()
            raise RuntimeError(
                f"{shlex.join(argv)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
                + (f"\n--- server log tail ---\n{tail}" if tail else "")
            )
        return proc

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, RuntimeError):
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args], check)

    # -- lifecycle

    def _init(self) -> None:
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam(_OS_USER)
            except KeyError:
                raise PostgresUnavailableError(
                    f"running as root but there is no '{_OS_USER}' OS user to run initdb as"
                ) from None
        self.base_dir = Path(tempfile.mkdtemp(prefix="doisoat-pg-"))
        if os.geteuid() == 0:
            os.chown(self.base_dir, owner.pw_uid, owner.pw_gid)
        atexit.register(self.cleanup)
        self._run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                _OS_USER,
                "--auth=trust",
                "--no-locale",
                "--encoding=UTF8",
                "--no-sync",
            ]
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "300",
        }
        conf = "".join(f"{k} = {v}\n" for k, v in settings.items())
        with (self.data_dir / "postgresql.conf").open("a") as fh:
            fh.write("\n# doisoat throwaway test cluster\n" + conf)
        self._start_watchdog()

    def _start_watchdog(self) -> None:
        """Reap the cluster if this process is SIGKILLed (atexit never runs then)."""
        stop = shlex.join(
            self._as_owner(
                [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"]
            )
        )
        script = (
            'while kill -0 "$1" 2>/dev/null; do sleep 1; done; '
            f'{stop} >/dev/null 2>&1; rm -rf -- "$2"'
        )
        self._watchdog = subprocess.Popen(
            ["sh", "-c", script, "pg-watchdog", str(os.getpid()), str(self._base())],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def is_running(self) -> bool:
        if self.base_dir is None or not self.data_dir.exists():
            return False
        return self._pg_ctl("status", check=False).returncode == 0

    def start(self) -> None:
        """Initialise on first call, then start and wait until it accepts connections."""
        with self._lock:
            if self._cleaned:
                raise RuntimeError("cluster was cleaned up; create a new one")
            if self.base_dir is None:
                self._init()
            elif self.is_running():
                return
            self._pg_ctl("-l", str(self.log_path), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop but keep data and port; ``mode="immediate"`` simulates a crash."""
        with self._lock:
            if self.is_running():
                self._pg_ctl("-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def cleanup(self) -> None:
        """Stop and delete the cluster. Idempotent; registered with atexit."""
        with self._lock:
            if self._cleaned:
                return
            self._cleaned = True
            if self.base_dir is None:
                return
            if self.data_dir.exists() and self._pg_ctl("status", check=False).returncode == 0:
                self._pg_ctl("-m", "immediate", "-w", "stop", check=False)
            shutil.rmtree(self.base_dir, ignore_errors=True)
            if self._watchdog is not None and self._watchdog.poll() is None:
                self._watchdog.kill()
                self._watchdog.wait()
        atexit.unregister(self.cleanup)

    def __enter__(self) -> ThrowawayCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        return f"ThrowawayCluster(port={self.port}, base_dir={self.base_dir})"
