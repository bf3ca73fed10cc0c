"""Keys made with ``doisoat keys``: shown once, stored as hashes, revoked within the cache TTL."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Row, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from services.access import keys as service
from services.app import console
from services.app.asgi import create_app
from services.app.commands.keys import keys_app
from shared.auth import NO_KEYS_MESSAGE, KeyRing
from shared.clock import fixed_clock
from shared.config import ApiKey, BaseDoisoatSettings
from shared.db import create_engine, unit_of_work
from shared.models import StoredApiKey, Unit
from tests.conftest import ADMIN_KEY, TEST_KEYS, TEST_NOW, bearer
from tests.support.waiting import eventually

REPO = Path(__file__).resolve().parents[3]
MY_UNIT = "000.00.12.H08"
OLD_UNIT = "000.00.05.H08"  # merged into MY_UNIT
OTHER_UNIT = "000.00.13.H08"
KEYS_COMMAND = "from services.app.commands.keys import keys_app; keys_app(prog_name='doisoat keys')"


def doisoat_keys_process(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``doisoat keys …`` in a process of its own, as an operator runs it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DOISOAT_")}
    return subprocess.run(
        [sys.executable, "-c", KEYS_COMMAND, *args],
        cwd=REPO,
        env={**clean, "PYTHONPATH": str(REPO), "DOISOAT_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


class RunKeys(Protocol):
    """The ``run_keys`` fixture: ``await run_keys(database_url, *args)``."""

    async def __call__(self, database_url: str, *args: str) -> Ran: ...


#: The ``http_for`` fixture: an HTTP client on an app, closed at the end of the test.
HttpFor = Callable[[FastAPI], httpx.AsyncClient]


@pytest.fixture
def run_keys(monkeypatch: pytest.MonkeyPatch) -> RunKeys:
    """``doisoat keys …`` in this process (in a thread: the command runs its own event loop).

    The command's logging set-up would replace pytest's handlers: it is left out here, and the
    process test above runs the whole command.
    """
    monkeypatch.setattr(console, "configure_logging", lambda level: None)
    for name in [name for name in os.environ if name.startswith("DOISOAT_")]:
        monkeypatch.delenv(name)

    async def run(database_url: str, *args: str) -> Ran:
        def invoke() -> Ran:
            result = CliRunner().invoke(
                keys_app, list(args), env={"DOISOAT_DATABASE_URL": database_url}
            )
            return Ran(result.exit_code, result.stdout, result.stderr)

        return await asyncio.to_thread(invoke)

    return run


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def app_with(
    engine: AsyncEngine, database_url: str, env_keys: list[ApiKey], ring: KeyRing | None = None
) -> FastAPI:
    settings = BaseDoisoatSettings(database_url=database_url, api_keys=env_keys, _env_file=None)
    app = create_app(settings, engine=engine, clock=fixed_clock(TEST_NOW))
    if ring is not None:
        app.state.key_ring = ring
    return app


@pytest.fixture
async def http_for() -> AsyncIterator[HttpFor]:
    clients: list[httpx.AsyncClient] = []

    def build(app: FastAPI) -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.aclose()


async def store_key(engine: AsyncEngine, role: str, units: list[str], account: str) -> str:
    async with unit_of_work(engine, "test") as connection:
        created = await service.create_key(
            connection, role=role, units=units, account=account, now=TEST_NOW
        )
    return created.key


async def revoke(engine: AsyncEngine, ident: str) -> None:
    async with unit_of_work(engine, "test") as connection:
        await service.revoke_key(connection, ident=ident, now=TEST_NOW)


async def stored_rows(engine: AsyncEngine) -> list[Row[Any]]:
    async with engine.connect() as connection:
        return list((await connection.execute(select(StoredApiKey))).all())


async def test_created_key_works_and_only_its_hash_is_stored(
    engine: AsyncEngine, database_url: str, http_for: HttpFor
) -> None:
    made = await asyncio.to_thread(
        doisoat_keys_process,
        database_url,
        "create",
        "--role",
        "officer",
        "--unit",
        MY_UNIT,
        "--unit",
        MY_UNIT,
        "--account",
        "tranthib.vpdkdd",
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert len(key) >= 40 and "\n" not in key
    assert "MỘT LẦN" in made.stderr and "shown only this once" in made.stderr
    assert key not in made.stderr

    [row] = await stored_rows(engine)
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert row.prefix == key[:6]
    assert (row.role, row.units, row.account) == ("officer", [MY_UNIT], "tranthib.vpdkdd")
    assert row.revoked_at is None
    for value in row:
        assert key not in str(value)

    http = http_for(app_with(engine, database_url, env_keys=[]))
    assert (await http.get("/api/v1/discrepancies", headers=bearer(key))).status_code == 200
    assert (await http.get("/api/v1/kpis", headers=bearer(key))).status_code == 200
    wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert (await http.get("/api/v1/discrepancies", headers=bearer(wrong))).status_code == 401
    # an officer key may not write the directory: its role still rules
    answer = await http.put(f"/api/v1/units/{MY_UNIT}", json={"name": "X"}, headers=bearer(key))
    assert answer.status_code == 403


async def test_list_shows_prefix_role_units_account_dates_never_the_key(
    database_url: str, run_keys: RunKeys
) -> None:
    url = database_url
    first = (await run_keys(url, "create", "--role", "admin", "--account", "quantri")).stdout
    second = (
        await run_keys(
            url, "create", "--role", "desk", "--unit", MY_UNIT, "--account", "lethic.motcua"
        )
    ).stdout
    keys = [first.strip(), second.strip()]
    revoked = await run_keys(url, "revoke", keys[0][:6])
    assert revoked.returncode == 0, revoked.stderr
    assert "Key revoked" in revoked.stderr

    listed = await run_keys(url, "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["id", "prefix", "role", "units", "account", "created", "revoked"]
    assert keys[0][:6] in lines[1] and "quantri" in lines[1] and "admin" in lines[1]
    assert keys[1][:6] in lines[2] and MY_UNIT in lines[2] and "lethic.motcua" in lines[2]
    assert not lines[1].endswith("—") and lines[2].endswith("—")  # revoked, active

    as_json = await run_keys(url, "list", "--json")
    items = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [item["account"] for item in items] == ["quantri", "lethic.motcua"]
    assert items[0]["revoked_at"] is not None and items[1]["revoked_at"] is None
    assert all(set(item) == set(service.KeyRead.model_fields) for item in items)

    engine = create_engine(url)
    try:
        hashes = [row.key_hash for row in await stored_rows(engine)]
    finally:
        await engine.dispose()
    for output in (listed.stdout + listed.stderr, as_json.stdout + as_json.stderr):
        for secret in [*keys, *hashes]:
            assert secret not in output


async def test_revoke_by_id_again_and_unknown(sqlite_database_url: str, run_keys: RunKeys) -> None:
    url = sqlite_database_url
    made = await run_keys(url, "create", "--role", "admin", "--account", "quantri")
    assert made.returncode == 0, made.stderr
    first = await run_keys(url, "revoke", "1")
    assert first.returncode == 0 and "Key revoked" in first.stderr
    again = await run_keys(url, "revoke", "1")
    assert again.returncode == 0 and "Already revoked" in again.stderr
    unknown = await run_keys(url, "revoke", "nothere")
    assert unknown.returncode == 2 and "no key 'nothere'" in unknown.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--role", "root", "--account", "x"], "invalid key (role)"),
        (["--role", "desk", "--account", "x"], "needs units"),
        (["--role", "desk", "--unit", MY_UNIT, "--account", " "], "invalid key (account)"),
    ],
)
async def test_create_validates_like_the_environment_keys(
    sqlite_database_url: str, run_keys: RunKeys, args: list[str], says: str
) -> None:
    result = await run_keys(sqlite_database_url, "create", *args)
    assert result.returncode == 2
    assert says in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


async def test_unknown_unit_is_a_warning_not_a_refusal(
    sqlite_database_url: str, run_keys: RunKeys
) -> None:
    result = await run_keys(
        sqlite_database_url, "create", "--role", "desk", "--unit", OTHER_UNIT, "--account", "x"
    )
    assert result.returncode == 0
    assert f"unit {OTHER_UNIT} is not in the directory yet" in result.stderr


async def test_unmigrated_database_is_one_clear_line(tmp_path: Path, run_keys: RunKeys) -> None:
    result = await run_keys(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", "list")
    assert result.returncode == 2
    assert "doisoat migrate" in result.stderr and "Traceback" not in result.stderr


async def test_revoked_key_is_refused_within_the_cache_ttl(
    engine: AsyncEngine, database_url: str, http_for: HttpFor
) -> None:
    key = await store_key(engine, "officer", [MY_UNIT], "tranthib.vpdkdd")
    clock = FakeMonotonic()
    ring = KeyRing(TEST_KEYS, engine=engine, ttl_seconds=2.0, monotonic=clock)
    http = http_for(app_with(engine, database_url, env_keys=[], ring=ring))
    assert (await http.get("/api/v1/discrepancies", headers=bearer(key))).status_code == 200

    await revoke(engine, key[:6])
    clock.now += 1.0  # within the TTL the cached key may still pass …
    assert (await http.get("/api/v1/discrepancies", headers=bearer(key))).status_code == 200
    clock.now += 1.0  # … and once it has passed, never again
    assert (await http.get("/api/v1/discrepancies", headers=bearer(key))).status_code == 401


async def test_revocation_takes_effect_with_the_real_clock_too(
    engine: AsyncEngine, database_url: str, http_for: HttpFor
) -> None:
    key = await store_key(engine, "admin", [], "quantri2")
    ring = KeyRing(TEST_KEYS, engine=engine, ttl_seconds=0.2)
    http = http_for(app_with(engine, database_url, env_keys=[], ring=ring))
    assert (await http.get("/api/v1/units", headers=bearer(key))).status_code == 200
    await revoke(engine, key[:6])

    async def answer() -> int:
        return (await http.get("/api/v1/units", headers=bearer(key))).status_code

    # Seen once the cache has aged past its TTL (0.2 s): wait for that, not for a fixed time.
    assert await eventually(answer, lambda status: status == 401, within=10) == 401


async def test_environment_keys_work_beside_stored_ones(
    engine: AsyncEngine, database_url: str, http_for: HttpFor
) -> None:
    key = await store_key(engine, "admin", [], "quantri2")
    http = http_for(app_with(engine, database_url, env_keys=TEST_KEYS))
    for presented in (ADMIN_KEY, key):
        assert (await http.get("/api/v1/units", headers=bearer(presented))).status_code == 200


async def test_stored_key_units_cover_descendants_and_replaced_codes(
    engine: AsyncEngine, database_url: str, http_for: HttpFor
) -> None:
    async with unit_of_work(engine, "test") as connection:
        for code, parent, successor in (
            (MY_UNIT, None, None),
            (OLD_UNIT, None, MY_UNIT),
            ("000.01.12.H08", MY_UNIT, None),
            (OTHER_UNIT, None, None),
        ):
            await connection.execute(
                insert(Unit).values(
                    code=code,
                    name=code,
                    parent_code=parent,
                    replaced_by=successor,
                    updated_at=TEST_NOW,
                )
            )
    key = await store_key(engine, "officer", [MY_UNIT], "tranthib.vpdkdd")
    http = http_for(app_with(engine, database_url, env_keys=[]))
    for unit, expected in (
        (MY_UNIT, 200),
        (OLD_UNIT, 200),
        ("000.01.12.H08", 200),
        (OTHER_UNIT, 403),
    ):
        answer = await http.get("/api/v1/discrepancies", params={"unit": unit}, headers=bearer(key))
        assert answer.status_code == expected, unit


async def test_no_keys_anywhere_is_503_saying_how_to_make_one(
    engine: AsyncEngine, database_url: str, http_for: HttpFor
) -> None:
    http = http_for(app_with(engine, database_url, env_keys=[]))
    answer = await http.get("/api/v1/units", headers=bearer(ADMIN_KEY))
    assert answer.status_code == 503
    assert answer.json()["detail"] == NO_KEYS_MESSAGE
    assert "doisoat keys create" in NO_KEYS_MESSAGE and "DOISOAT_API_KEYS" in NO_KEYS_MESSAGE
    assert (await http.post("/api/v1/events", json=[])).status_code == 503

    key = await store_key(engine, "admin", [], "quantri")
    http = http_for(app_with(engine, database_url, env_keys=[]))  # a fresh cache
    assert (await http.get("/api/v1/units", headers=bearer(key))).status_code == 200


async def test_unreadable_key_table_is_503_and_environment_keys_still_work(
    database_url: str, http_for: HttpFor
) -> None:
    unreachable = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        ring = KeyRing(TEST_KEYS, engine=unreachable)
        app = app_with(unreachable, database_url, env_keys=[], ring=ring)
        http = http_for(app)
        answer = await http.get("/api/v1/discrepancies", headers=bearer("x" * 43))
        assert answer.status_code == 503
        assert "doisoat migrate" in answer.json()["detail"]
        assert await ring.authenticate(ADMIN_KEY) is not None
    finally:
        await unreachable.dispose()


async def test_lookup_compares_hashes_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "k" * 24 + "0123456789abcdefghij"
    ring = KeyRing(
        [
            ApiKey(key="a-different-key-0123456789", role="source", units=[MY_UNIT], account="a"),
            ApiKey(key=secret, role="admin", account="quantri"),
            ApiKey(key="yet-another-key-0123456789", role="desk", units=[MY_UNIT], account="d"),
        ]
    )
    compared: list[tuple[str, str]] = []
    original = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    same_length_wrong = secret[:-1] + "X"
    assert len(same_length_wrong) == len(secret)
    assert await ring.authenticate(same_length_wrong) is None
    assert len(compared) == 3  # every key compared, no early exit
    assert all(len(a) == len(b) == 64 for a, b in compared)  # hashes, never the keys
    assert all(secret not in a + b for a, b in compared)

    compared.clear()
    found = await ring.authenticate(secret)
    assert found is not None and found.account == "quantri"
    assert len(compared) == 3
    assert await ring.configured()


def test_a_new_key_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = iter(["-kx" + "a" * 40, "-" + "b" * 42, "Qz" + "c" * 41])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda size: next(drawn))
    assert service.new_key() == "Qz" + "c" * 41
