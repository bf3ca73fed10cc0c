"""A seeded two-commune world for the workspace's authorisation matrix (contract §5 and §6).

The same geography as the API matrix (``tests/security/conftest.py``): commune A
(``000.00.12.H08``) and commune B (``000.00.13.H08``) under one province, each answering for an
old code merged into it through ``replaced_by`` (``05`` → A, ``14`` → B). What differs is who
asks: officers of the directory with server-side sessions, not API keys.

Everything is seeded through the domain services, as production writes it: the directory
(``put_unit``, ``put_officer``), ingest's ``store_events`` (a snapshot and a progress step per
dossier, each with its own procedure name and applicant, so that a leak is recognisable), the
desk's ``store_report``, the reconciler (``Reconciler.drain``, with the alerts planner writing
the outbox in its transaction) to open the discrepancies, and the workspace's own
``sessions.create_link`` / ``use_link`` for every officer's session. Then some sessions are made
unusable the way they are in life: an officer deactivated, a session ended, a session expired.

The world is built once per backend per module; :class:`tests.security.conftest.World` compares
every row of every table before and after each request and puts the seeded rows back after a
request that was allowed to write.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.alerts.config import AlertsSettings
from services.alerts.planner import AlertPlanner
from services.app.asgi import create_app
from services.ingest.service import store_events
from services.reconciler.config import ReconcilerSettings
from services.reconciler.directory.schemas import OfficerUpdate
from services.reconciler.directory.service import put_officer, put_unit
from services.reconciler.reports.schemas import FieldReportCreate, ReportKind
from services.reconciler.reports.service import store_report
from services.reconciler.worker import Reconciler
from services.workspace import sessions
from services.workspace.auth import COOKIE
from services.workspace.config import WorkspaceSettings
from shared.clock import fixed_clock
from shared.config import ApiKey
from shared.db import create_engine, unit_of_work
from shared.dvcqg import format_thoi_diem
from shared.events import DossierEvent, parse_envelope
from shared.models import Discrepancy
from shared.privacy import mask_name
from tests.conftest import TEST_NOW
from tests.factories import progress, snapshot
from tests.security.conftest import OLD_A, OLD_B, PROVINCE, UNIT_A, UNIT_B, World
from tests.support import postgres

BASE_URL: Final = "http://doisoat.test"
SECRET: Final = "workspace-authz-secret-0123456789abcdef"
UNKNOWN_UNIT: Final = "000.00.99.H08"  # in no directory
RECEIVED: Final = TEST_NOW - timedelta(days=30)  # overdue and stalled by TEST_NOW
SESSION_START: Final = TEST_NOW - timedelta(hours=1)


# --------------------------------------------------------------------------- who asks


@dataclass(frozen=True)
class Who:
    """Someone sending requests to the pages: an officer with a session, or nobody."""

    name: str
    account: str | None = None
    role: str | None = None  # desk | handler | leader
    unit: str | None = None
    session: str = "none"  # valid | inactive | ended | expired | none

    @property
    def signed_in(self) -> bool:
        return self.session == "valid"


ANONYMOUS = Who("anonymous")
DESK_A = Who("desk@A", "motcua.a", "desk", UNIT_A, "valid")
HANDLER_A = Who("handler@A", "xuly.a", "handler", UNIT_A, "valid")
LEADER_A = Who("leader@A", "lanhdao.a", "leader", UNIT_A, "valid")
LEADER_PROVINCE = Who("leader@province", "lanhdao.tinh", "leader", PROVINCE, "valid")
DESK_B = Who("desk@B", "motcua.b", "desk", UNIT_B, "valid")
HANDLER_B = Who("handler@B", "xuly.b", "handler", UNIT_B, "valid")
LEADER_B = Who("leader@B", "lanhdao.b", "leader", UNIT_B, "valid")
INACTIVE = Who("inactive handler@A", "nghiviec.a", "handler", UNIT_A, "inactive")
ENDED = Who("ended-session desk@A", "dangxuat.a", "desk", UNIT_A, "ended")
EXPIRED = Who("expired-session leader@A", "hethan.a", "leader", UNIT_A, "expired")
# A desk officer moved from A to B this morning, after recording a return at A's desk.
MOVED = Who("desk@B (moved from A)", "chuyen.b", "desk", UNIT_B, "valid")
PRINCIPALS: Final = (
    ANONYMOUS,
    DESK_A,
    HANDLER_A,
    LEADER_A,
    LEADER_PROVINCE,
    DESK_B,
    HANDLER_B,
    LEADER_B,
    INACTIVE,
    ENDED,
    EXPIRED,
    MOVED,
)
NEWCOMER = "moi.a"  # a handler of A without a session: the sign-in links are theirs
NOT_AN_OFFICER = "khong.co.that"
OFFICERS: Final = [
    *(who for who in PRINCIPALS if who.account is not None),
    Who("newcomer", NEWCOMER, "handler", UNIT_A),
]


# --------------------------------------------------------------------------- what is aimed at


@dataclass(frozen=True)
class Dossier:
    """A seeded dossier, with what must never leak of it outside its units."""

    code: str
    unit: str  # its DonViXuLy (an old code for the merged ones)
    home: str  # the commune answering for it today
    procedure: str
    applicant: str
    id_number: str

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.code, self.procedure, self.applicant, mask_name(self.applicant))


def _dossier(unit: str, home: str, number: int, procedure: str, applicant: str) -> Dossier:
    return Dossier(
        code=f"{unit}-241007-{number:04d}",
        unit=unit,
        home=home,
        procedure=procedure,
        applicant=applicant,
        id_number=f"0{number:02d}19001234{number}",
    )


DOSSIERS: Final[Mapping[str, Dossier]] = {
    "A": _dossier(UNIT_A, UNIT_A, 1, "Chứng thực bản sao Tân Phú", "Nguyễn Văn Anh"),
    "old-A": _dossier(OLD_A, UNIT_A, 2, "Đăng ký khai tử mã cũ Tân Phú", "Trần Thị Cúc"),
    "B": _dossier(UNIT_B, UNIT_B, 3, "Cấp phép xây dựng Hòa Bình", "Phạm Thị Bê"),
    "old-B": _dossier(OLD_B, UNIT_B, 4, "Đăng ký kết hôn mã cũ Hòa Bình", "Lê Văn Bốn"),
    # on today's register (the desk's reports of this morning)
    "A register": _dossier(UNIT_A, UNIT_A, 5, "Đăng ký thường trú Tân Phú", "Võ Minh Em"),
    "B register": _dossier(UNIT_B, UNIT_B, 6, "Cấp bản sao trích lục Hòa Bình", "Đỗ Thị Giang"),
}
TARGETS: Final = ("A", "old-A", "B", "old-B")  # the dossiers requests are aimed at
UNKNOWN_CODE: Final = f"{UNIT_A}-241007-9999"  # never heard of
HANDLER_OF: Final = {UNIT_A: HANDLER_A, UNIT_B: HANDLER_B}
DESK_OF: Final = {UNIT_A: DESK_A, UNIT_B: DESK_B}


def covers(who: Who, unit: str | None) -> bool:
    """Whether ``who``'s unit answers for ``unit`` (its descendants and replaced codes)."""
    if who.unit is None or unit is None:
        return False
    homes = {UNIT_A: UNIT_A, OLD_A: UNIT_A, UNIT_B: UNIT_B, OLD_B: UNIT_B, PROVINCE: PROVINCE}
    home = homes.get(unit)
    return home is not None and (who.unit == PROVINCE or who.unit == home)


def hidden_from(who: Who) -> list[Dossier]:
    """The dossiers ``who`` must never be shown anything of."""
    return [d for d in DOSSIERS.values() if not (who.signed_in and covers(who, d.unit))]


# --------------------------------------------------------------------------- the world


@dataclass
class WorkspaceWorld:
    """The seeded database, the app with its pages, and every officer's session."""

    world: World
    app: Any
    transport: httpx.ASGITransport
    session_tokens: dict[str, str] = field(default_factory=dict)  # account → cookie value
    csrf_tokens: dict[str, str] = field(default_factory=dict)  # account → the session's token
    discrepancy_ids: dict[str, int] = field(default_factory=dict)  # target → an open one
    report_ids: dict[str, str] = field(default_factory=dict)  # withdraw target → report_id
    report_codes: dict[str, str] = field(default_factory=dict)  # withdraw target → dossier
    links: dict[str, str] = field(default_factory=dict)  # state → a sign-in link token

    @property
    def backend(self) -> str:
        return self.world.backend

    def client(self, who: Who, **cookies: str) -> httpx.AsyncClient:
        """A browser of ``who``: their session cookie (if they ever had one) in its jar."""
        jar = dict(cookies)
        if who.account is not None and who.account in self.session_tokens:
            jar[COOKIE] = self.session_tokens[who.account]
        return httpx.AsyncClient(transport=self.transport, base_url=BASE_URL, cookies=jar)

    def csrf(self, who: Who) -> str:
        return self.csrf_tokens.get(who.account or "", "")

    def wrong_csrf(self, who: Who) -> str:
        """Someone else's valid session token: as wrong as a forged one, and well-formed."""
        other = HANDLER_B if who.account != HANDLER_B.account else HANDLER_A
        return self.csrf(other)


def _events(envelopes: Iterable[dict[str, Any]]) -> list[DossierEvent]:
    events = [parse_envelope(envelope) for envelope in envelopes]
    checked = [event for event in events if isinstance(event, DossierEvent)]
    assert len(checked) == len(events), events
    return checked


async def _seed_directory(connection: AsyncConnection) -> None:
    at = RECEIVED - timedelta(days=1)
    await put_unit(
        connection, code=PROVINCE, name="UBND tỉnh H08", parent_code=None, replaced_by=None, now=at
    )
    for unit, old, name in ((UNIT_A, OLD_A, "Xã Tân Phú"), (UNIT_B, OLD_B, "Xã Hòa Bình")):
        await put_unit(
            connection, code=unit, name=name, parent_code=PROVINCE, replaced_by=None, now=at
        )
        await put_unit(
            connection,
            code=old,
            name=f"{name} (mã cũ)",
            parent_code=PROVINCE,
            replaced_by=unit,
            now=at,
        )
    for who in OFFICERS:
        assert who.account and who.unit and who.role
        await put_officer(
            connection,
            account=who.account,
            officer_in=OfficerUpdate(
                full_name=f"Cán bộ {who.account}",
                unit_code=who.unit,
                role=who.role,
                email=f"{who.account}@tinh.gov.vn",
            ),
            now=at,
        )


async def _seed_dossiers(connection: AsyncConnection) -> None:
    envelopes: list[dict[str, Any]] = []
    for n, dossier in enumerate(DOSSIERS.values()):
        handler = HANDLER_OF[dossier.home]
        envelopes.append(
            snapshot(
                dossier.code,
                event_id=f"ws-snap-{n}",
                emitted_at=RECEIVED,
                unit=dossier.unit,
                TenTTHC=dossier.procedure,
                ChuHoSo=dossier.applicant,
                SoGiayToChuHoSo=dossier.id_number,
                TenLinhVuc=f"Lĩnh vực {dossier.home}",
                NgayTiepNhan=format_thoi_diem(RECEIVED),
                NgayHenTra=format_thoi_diem(RECEIVED + timedelta(days=5)),
            )
        )
        envelopes.append(
            progress(
                dossier.code,
                event_id=f"ws-step-{n}",
                emitted_at=RECEIVED + timedelta(hours=1),
                step_at=RECEIVED + timedelta(hours=1),
                officer=handler.account or "",
            )
        )
    await store_events(connection, _events(envelopes), now=RECEIVED + timedelta(hours=2))


async def _report(
    connection: AsyncConnection,
    report_id: str,
    dossier: str,
    *,
    kind: ReportKind,
    officer: str,
    unit: str,
    at: datetime,
) -> None:
    stored = await store_report(
        connection,
        FieldReportCreate(
            report_id=report_id,
            dossier_code=dossier,
            kind=kind,
            occurred_at=at,
            officer=officer,
            unit_code=unit,
        ),
        channel="api",
        now=at,
    )
    assert stored.outcome == "accepted", stored


# Withdraw targets: (report_id, dossier, author, unit, received this long before TEST_NOW, kind),
# all on today's register (the dossiers "A register" and "B register", judged within the grace).
WITHDRAWALS: Final[Mapping[str, tuple[str, str, str, str, timedelta, ReportKind]]] = {
    # desk@A's report of ten minutes ago: theirs to withdraw
    "A": ("ws-today-a", DOSSIERS["A register"].code, DESK_A.account or "", UNIT_A,
          timedelta(minutes=10), "returned"),
    # desk@A's report of two hours ago: past the 30-minute window for everyone
    "A, too late": ("ws-early-a", DOSSIERS["A register"].code, DESK_A.account or "", UNIT_A,
                    timedelta(hours=2), "withdrawn"),
    # desk@B's report of ten minutes ago
    "B": ("ws-today-b", DOSSIERS["B register"].code, DESK_B.account or "", UNIT_B,
          timedelta(minutes=10), "returned"),
    # A report of unit A whose free-text ``officer`` (the API takes any account from a desk key)
    # names handler@B: not a desk officer, not of unit A.
    "A, named after handler@B": ("ws-named-b", DOSSIERS["A register"].code,
                                 HANDLER_B.account or "", UNIT_A, timedelta(minutes=5),
                                 "withdrawn"),
    # desk@B (moved from A)'s report at A's desk, twenty minutes ago, before the move
    "A, by its author since moved to B": ("ws-moved", DOSSIERS["A register"].code,
                                          MOVED.account or "", UNIT_A, timedelta(minutes=20),
                                          "returned"),
}  # fmt: skip
UNKNOWN_REPORT: Final = "ws-no-such-report"


async def _seed_reports(connection: AsyncConnection) -> None:
    for unit, target in ((UNIT_A, "A"), (UNIT_B, "B")):  # yesterday: RETURNED_BUT_OPEN
        code = DOSSIERS[target].code
        await _report(
            connection,
            f"ws-yesterday-{unit}",
            code,
            kind="returned",
            officer=DESK_OF[unit].account or "",
            unit=unit,
            at=TEST_NOW - timedelta(days=1),
        )
    for report_id, code, author, unit, ago, kind in WITHDRAWALS.values():
        await _report(
            connection, report_id, code, kind=kind, officer=author, unit=unit, at=TEST_NOW - ago
        )


async def _judge(engine: AsyncEngine, url: str) -> None:
    """The reconciler, once, with the alerts planner writing the outbox in its transaction."""
    planner = AlertPlanner(AlertsSettings(database_url=url, smtp_host="127.0.0.1", _env_file=None))
    reconciler = Reconciler(
        ReconcilerSettings(database_url=url, _env_file=None),
        engine,
        fixed_clock(TEST_NOW),
        on_changes=lambda connection, changes, now: planner.on_changes(
            connection, changes, now=now
        ),
    )
    await reconciler.drain()


async def _seed_sessions(connection: AsyncConnection, ww: WorkspaceWorld) -> None:
    for who in PRINCIPALS:
        if who.account is None:
            continue
        link = await sessions.create_link(
            connection, who.account, now=SESSION_START, requested_from="seed"
        )
        lifetime = timedelta(minutes=30) if who.session == "expired" else timedelta(hours=12)
        state, _, token = await sessions.use_link(
            connection, link, now=SESSION_START, lifetime=lifetime, client_address="seed"
        )
        assert state == "valid" and token is not None
        found = await sessions.session_of(connection, token, now=SESSION_START)
        assert found is not None
        ww.session_tokens[who.account] = token
        ww.csrf_tokens[who.account] = found.csrf_token
        if who.session == "ended":
            await sessions.end_session(connection, found.session_hash, now=SESSION_START)
    # Sign-in links of the newcomer in every state, and one of the officer deactivated below.
    for state, ago in (("valid", 1), ("used", 3), ("expired", 20)):
        ww.links[state] = await sessions.create_link(
            connection, NEWCOMER, now=TEST_NOW - timedelta(minutes=ago), requested_from="seed"
        )
    used, _, _ = await sessions.use_link(
        connection,
        ww.links["used"],
        now=TEST_NOW - timedelta(minutes=2),
        lifetime=timedelta(hours=12),
        client_address="seed",
    )
    assert used == "valid"
    ww.links["inactive"] = await sessions.create_link(
        connection, INACTIVE.account or "", now=TEST_NOW - timedelta(minutes=1), requested_from="s"
    )
    ww.links["unknown"] = sessions.new_token()
    # The officer leaves: their session, still open in the table, must stop working.
    assert INACTIVE.account and INACTIVE.unit and INACTIVE.role
    await put_officer(
        connection,
        account=INACTIVE.account,
        officer_in=OfficerUpdate(
            full_name=f"Cán bộ {INACTIVE.account}",
            unit_code=INACTIVE.unit,
            role=INACTIVE.role,
            email=f"{INACTIVE.account}@tinh.gov.vn",
            active=False,
        ),
        now=SESSION_START,
    )


async def _open_discrepancies(connection: AsyncConnection) -> dict[str, int]:
    """One unresolved discrepancy per target dossier (the reconciler opened one or two each:
    RETURNED_BUT_OPEN for those returned yesterday, OVERDUE_NO_APOLOGY and STALLED for the
    others)."""
    rows = (
        await connection.execute(
            select(Discrepancy.id, Discrepancy.dossier_code).where(Discrepancy.status != "resolved")
        )
    ).all()
    found = {}
    for target in TARGETS:
        dossier = DOSSIERS[target]
        ids = [row.id for row in rows if row.dossier_code == dossier.code]
        assert ids, (dossier.code, rows)
        found[target] = min(ids)
    return found


async def seed(ww: WorkspaceWorld, url: str) -> None:
    engine = ww.world.engine
    async with unit_of_work(engine, "ws_seed") as connection:
        await _seed_directory(connection)
        await _seed_dossiers(connection)
        await _seed_reports(connection)
    await _judge(engine, url)
    async with unit_of_work(engine, "ws_seed_sessions") as connection:
        await _seed_sessions(connection, ww)
        ww.discrepancy_ids = await _open_discrepancies(connection)
    for target, (report_id, code, *_) in WITHDRAWALS.items():
        ww.report_ids[target] = report_id
        ww.report_codes[target] = code


@asynccontextmanager
async def opened_world(
    backend: str, *, pg_server: str, pg_template: str, sqlite_template: Path, scratch: Path
) -> AsyncIterator[WorkspaceWorld]:
    """The seeded world and the pages over it, on ``backend`` (a database of its own)."""
    drop: str | None = None
    if backend == "postgresql":
        drop = f"doisoat_wsauthz_{uuid.uuid4().hex[:12]}"
        await postgres.create_database(pg_server, drop, template=pg_template)
        url = postgres.database_url(pg_server, drop)
    else:
        path = scratch / "doisoat.db"
        shutil.copyfile(sqlite_template, path)
        url = f"sqlite+aiosqlite:///{path}"
    engine = create_engine(url)
    settings = WorkspaceSettings(
        database_url=url,
        api_keys=[ApiKey(key="ws-admin-key-0123456789abcdef", role="admin", account="quantri")],
        secret_key=SECRET,
        _env_file=None,
    )
    app = create_app(settings, engine=engine, clock=fixed_clock(TEST_NOW), workspace=settings)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as anonymous:
            world = World(backend=backend, engine=engine, client=anonymous, app=app)
            built = WorkspaceWorld(world=world, app=app, transport=transport)
            await seed(built, url)
            await world.reflect()
            await world.remember_seeded()
            yield built
    finally:
        await engine.dispose()
        if drop is not None:
            await postgres.drop_database(pg_server, drop)


# --------------------------------------------------------------------------- the count


class CaseCounter:
    """Counts the requests checked, and says so at the end of the run (a pytest plugin)."""

    NAME: Final = "doisoat-workspace-authorisation-count"

    def __init__(self) -> None:
        self.cases: list[str] = []

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.cases:
            backends = sorted({name.split("|", 1)[0] for name in self.cases})
            terminalreporter.write_line(
                f"workspace authorisation cases tried: {len(self.cases)} (page and form requests "
                f"checked for status, content and writes, backends: {', '.join(backends)})"
            )


def case_counter(config: pytest.Config) -> CaseCounter:
    """The run's counter, registered as a plugin the first time it is asked for."""
    found = config.pluginmanager.get_plugin(CaseCounter.NAME)
    if isinstance(found, CaseCounter):
        return found
    counter = CaseCounter()
    config.pluginmanager.register(counter, CaseCounter.NAME)
    return counter
