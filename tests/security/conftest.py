"""A seeded two-commune world for the authorisation matrix (issue 6, point 2).

Commune A is the one of ``tests/conftest.py``'s keys (``000.00.12.H08``); commune B
(``000.00.13.H08``) gets keys of its own here. Each commune also answers for an old code merged
into it through ``replaced_by`` (``05`` → A, ``14`` → B), and both sit under one province, so that
"covered codes" (descendants and replaced codes, contract §5) are exercised both ways.

The world is built once per backend per module (PostgreSQL and SQLite, cloned from the migrated
templates of ``tests/conftest.py``) and seeded through the API with the admin key, plus a few rows
written directly (discrepancies, notifications) that only the reconciler and the alerts service
write. Tests stay isolated without rebuilding it: :meth:`World.state` reads every table, and
:meth:`World.restore` puts the seeded contents back after a request that was allowed to write.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import MetaData, Table, column, delete, insert, select, table, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.app.asgi import create_app
from shared.clock import fixed_clock
from shared.config import ApiKey, BaseDoisoatSettings
from shared.db import create_engine, unit_of_work
from shared.models import Discrepancy, Notification
from tests.conftest import (
    ADMIN_KEY,
    BACKENDS,
    DESK_KEY,
    OFFICER_KEY,
    SOURCE_KEY,
    TEST_KEYS,
    TEST_NOW,
    bearer,
)
from tests.factories import BASE_TIME, dossier_code, progress, snapshot
from tests.support import postgres

PROVINCE = "000.00.00.H08"
UNIT_A = "000.00.12.H08"  # the unit of DESK_KEY, OFFICER_KEY, SOURCE_KEY (tests/conftest.py)
UNIT_B = "000.00.13.H08"
OLD_A = "000.00.05.H08"  # merged into UNIT_A (replaced_by): A's keys cover it
OLD_B = "000.00.14.H08"  # merged into UNIT_B: B's keys cover it, A's never
HOMES = {"A": UNIT_A, "B": UNIT_B}
OLD_OF = {UNIT_A: OLD_A, UNIT_B: OLD_B}
OTHER_OF = {UNIT_A: UNIT_B, UNIT_B: UNIT_A}

SOURCE_KEY_B = "source-key-commune-b-0123456789"
DESK_KEY_B = "desk-key-commune-b-0123456789"
OFFICER_KEY_B = "officer-key-commune-b-0123456789"
OFFICER_KEY_PROVINCE = "officer-key-province-0123456789"  # covers both communes (descendants)
UNKNOWN_KEY = "not-a-configured-key-0123456789"
SECURITY_KEYS = [
    *TEST_KEYS,
    ApiKey(key=SOURCE_KEY_B, role="source", units=[UNIT_B], account="hethong.xab"),
    ApiKey(key=DESK_KEY_B, role="desk", units=[UNIT_B], account="motcua.xab"),
    ApiKey(key=OFFICER_KEY_B, role="officer", units=[UNIT_B], account="canbo.xab"),
    ApiKey(key=OFFICER_KEY_PROVINCE, role="officer", units=[PROVINCE], account="canbo.tinh"),
]
# (role, home commune) → key; ``none`` sends no Authorization header at all.
KEYS: dict[tuple[str, str], str | None] = {
    ("none", "A"): None,
    ("unknown", "A"): UNKNOWN_KEY,
    ("admin", "A"): ADMIN_KEY,
    ("source", "A"): SOURCE_KEY,
    ("desk", "A"): DESK_KEY,
    ("officer", "A"): OFFICER_KEY,
    ("source", "B"): SOURCE_KEY_B,
    ("desk", "B"): DESK_KEY_B,
    ("officer", "B"): OFFICER_KEY_B,
}
ACCOUNTS = {key.key: key.account for key in SECURITY_KEYS}

# Tables where recording a refused attempt is not "writing": the audit log records refusals (401,
# 403, …) like successes by design (services/api/audit.py).
TABLES_ALLOWED_TO_RECORD_REFUSALS = frozenset({"audit_log"})

ACK_SECRET = "authz-matrix-ack-secret-0123456789abcdef"
KPI_QUERY = "from=2024-10-01&to=2024-10-31"


def officer_of(unit: str) -> str:
    return f"canbo.{unit}"


State = dict[str, list[str]]  # table → its rows as text, sorted


@dataclass
class World:
    """One seeded database and the API over it, with what the tests need to aim at it."""

    backend: str
    engine: AsyncEngine
    client: httpx.AsyncClient
    app: Any
    tables: list[str] = field(default_factory=list)  # parents before children
    discrepancy_ids: dict[str, int] = field(default_factory=dict)  # unit code → open one
    baseline: State = field(default_factory=dict)  # state() of the seeded world
    _seeded: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)  # for restore()
    _columns: dict[str, list[str]] = field(default_factory=dict)
    _reflected: dict[str, Table] = field(default_factory=dict)
    _everything: Any = None

    @property
    def sqlite(self) -> bool:
        return self.backend == "sqlite"

    async def reflect(self) -> None:
        metadata = MetaData()
        async with self.engine.connect() as connection:
            await connection.run_sync(lambda sync: metadata.reflect(bind=sync))
        self.tables = [t.name for t in metadata.sorted_tables]
        self._reflected = {t.name: t for t in metadata.sorted_tables}
        self._columns = {t.name: [c.name for c in t.columns] for t in metadata.sorted_tables}
        # Every row of every table as text, in one round trip.
        if self.sqlite:
            parts = [
                f"SELECT '{name}', "
                + " || '|' || ".join(f'quote("{c}")' for c in self._columns[name])
                + f' FROM "{name}"'
                for name in self.tables
            ]
        else:
            parts = [f"SELECT '{name}', row_::text FROM \"{name}\" AS row_" for name in self.tables]
        self._everything = text(" UNION ALL ".join(parts))

    async def state(self) -> State:
        """Every row of every table as text (sorted), to prove that nothing was written."""
        found: State = {name: [] for name in self.tables}
        async with self.engine.connect() as connection:
            for name, row in (await connection.execute(self._everything)).all():
                found[name].append(row)
        return {name: sorted(rows) for name, rows in found.items()}

    def written(self, after: State) -> dict[str, int]:
        """Tables whose contents differ from the seeded world (audit tables excepted), with the
        change in their row count."""
        return {
            name: len(after[name]) - len(self.baseline[name])
            for name in self.tables
            if after[name] != self.baseline[name] and name not in TABLES_ALLOWED_TO_RECORD_REFUSALS
        }

    async def remember_seeded(self) -> None:
        async with self.engine.connect() as connection:
            for name in self.tables:
                if self.sqlite:  # raw values: no type processing either way, so restore is exact
                    result = await connection.execute(text(f'SELECT * FROM "{name}"'))
                else:
                    result = await connection.execute(select(self._reflected[name]))
                self._seeded[name] = [tuple(row) for row in result.all()]
        self.baseline = await self.state()

    async def restore(self, after: State | None = None) -> None:
        """Put the seeded contents back into the tables that differ from ``after`` (all tables
        when not given) and the tables referring to them (cascades): children deleted first,
        parents inserted first."""
        dirty = {
            name for name in self.tables if after is None or after[name] != self.baseline[name]
        }
        grown = True
        while grown:
            children = {
                name
                for name in self.tables
                if any(key.column.table.name in dirty for key in self._reflected[name].foreign_keys)
            }
            grown = not children <= dirty
            dirty |= children
        async with unit_of_work(self.engine, "test_restore") as connection:
            for name in reversed(self.tables):
                if name in dirty:
                    await connection.execute(delete(self._target(name)))
            for name in self.tables:
                rows = self._seeded[name]
                if name in dirty and rows:
                    columns = self._columns[name]
                    await connection.execute(
                        insert(self._target(name)),
                        [dict(zip(columns, row, strict=True)) for row in rows],
                    )
        assert await self.state() == self.baseline, "the seeded world could not be restored"

    def _target(self, name: str) -> Any:
        if self.sqlite:
            return table(name, *(column(c) for c in self._columns[name]))
        return self._reflected[name]


async def _admin(world: World, method: str, url: str, **kwargs: Any) -> httpx.Response:
    answer = await world.client.request(method, url, headers=bearer(ADMIN_KEY), **kwargs)
    assert answer.status_code < 300, (method, url, answer.status_code, answer.text)
    return answer


async def _seed(world: World) -> None:
    await _admin(world, "PUT", f"/api/v1/units/{PROVINCE}", json={"name": "Tỉnh H08"})
    for unit, name in ((UNIT_A, "Xã Tân Phú"), (UNIT_B, "Xã Hòa Bình")):
        await _admin(
            world, "PUT", f"/api/v1/units/{unit}", json={"name": name, "parent_code": PROVINCE}
        )
        await _admin(
            world,
            "PUT",
            f"/api/v1/units/{OLD_OF[unit]}",
            json={"name": f"{name} (mã cũ)", "parent_code": PROVINCE, "replaced_by": unit},
        )
        await _admin(
            world,
            "PUT",
            f"/api/v1/officers/{officer_of(unit)}",
            json={
                "full_name": f"Cán bộ {name}",
                "unit_code": unit,
                "role": "handler",
                "email": f"canbo.{unit}@tinh.gov.vn",
            },
        )
    events = []
    for n, code in enumerate(
        [dossier_code(1, unit) for unit in (UNIT_A, OLD_A, UNIT_B, OLD_B)], start=1
    ):
        unit = code.split("-", 1)[0]
        events.append(
            snapshot(
                code,
                event_id=f"seed-snap-{n}",
                emitted_at=BASE_TIME,
                unit=unit,
                ChuHoSo="Nguyễn Văn An",
            )
        )
        events.append(
            progress(
                code,
                event_id=f"seed-step-{n}",
                emitted_at=BASE_TIME + timedelta(hours=1),
                step_at=BASE_TIME + timedelta(hours=1),
                officer=officer_of(unit),
            )
        )
    answer = await _admin(world, "POST", "/api/v1/events", json=events)
    assert {r["outcome"] for r in answer.json()["results"]} == {"stored"}, answer.text
    for unit in (UNIT_A, UNIT_B):
        await _admin(
            world,
            "POST",
            "/api/v1/field-reports",
            json={
                "report_id": f"seed-report-{unit}",
                "dossier_code": dossier_code(1, unit),
                "kind": "returned",
                "occurred_at": (BASE_TIME + timedelta(days=2)).isoformat(),
                "officer": f"motcua.{unit}",
                "unit_code": unit,
            },
        )
    async with unit_of_work(world.engine, "test_seed") as connection:
        codes = (UNIT_A, OLD_A, UNIT_B, OLD_B)
        result = await connection.execute(
            insert(Discrepancy).returning(Discrepancy.id, sort_by_parameter_order=True),
            [
                {
                    "dossier_code": dossier_code(1, unit),
                    "kind": "RETURNED_BUT_OPEN",
                    "severity": "critical",
                    "status": "open",
                    "unit_code": unit,
                    "responsible": officer_of(unit),
                    "reporter": f"motcua.{unit}",
                    "since": BASE_TIME + timedelta(days=2),
                    "opened_at": BASE_TIME + timedelta(days=2, hours=2),
                    "details": {"system_status": 4},
                    "updated_at": BASE_TIME + timedelta(days=2, hours=2),
                }
                for unit in codes
            ],
        )
        world.discrepancy_ids = dict(zip(codes, result.scalars().all(), strict=True))
        await connection.execute(
            insert(Notification),
            [
                {
                    "discrepancy_id": world.discrepancy_ids[unit],
                    "purpose": "alert",
                    "severity": "critical",
                    "recipient": officer_of(unit),
                    "channel": "email",
                    "address": f"canbo.{unit}@tinh.gov.vn",
                    "unit_code": unit,
                    "content": {"subject": f"Hồ sơ {dossier_code(1, unit)}"},
                    "status": "pending",
                    "not_before": TEST_NOW,
                    "attempts": 0,
                    "created_at": TEST_NOW,
                }
                for unit in (UNIT_A, UNIT_B)
            ],
        )


@pytest.fixture(scope="module", params=BACKENDS)
async def world(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_server: str,
    pg_template: str,
    sqlite_template: Path,
) -> AsyncIterator[World]:
    """The seeded two-commune world on one backend, shared by a module's tests."""
    drop: str | None = None
    if request.param == "postgresql":
        drop = f"doisoat_authz_{uuid.uuid4().hex[:12]}"
        await postgres.create_database(pg_server, drop, template=pg_template)
        url = postgres.database_url(pg_server, drop)
    else:
        path = tmp_path_factory.mktemp("authz") / "doisoat.db"
        shutil.copyfile(sqlite_template, path)
        url = f"sqlite+aiosqlite:///{path}"
    engine = create_engine(url)
    settings = BaseDoisoatSettings(
        database_url=url, api_keys=SECURITY_KEYS, secret_key=ACK_SECRET, _env_file=None
    )
    app = create_app(settings, engine=engine, clock=fixed_clock(TEST_NOW))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://doisoat.test") as http:
            built = World(backend=request.param, engine=engine, client=http, app=app)
            await built.reflect()
            await _seed(built)
            await built.remember_seeded()
            yield built
    finally:
        await engine.dispose()
        if drop is not None:
            await postgres.drop_database(pg_server, drop)


# --- the count the lead reports ("authorisation cases tried") ---

CASES_TRIED: list[str] = []


def record_case(name: str) -> None:
    CASES_TRIED.append(name)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if CASES_TRIED:
        backends = sorted({name.split("|", 1)[0] for name in CASES_TRIED})
        terminalreporter.write_line(
            f"authorisation cases tried: {len(CASES_TRIED)} "
            f"(requests checked for status and writes, backends: {', '.join(backends)})"
        )
