"""A small world for the workspace's pages over ASGI: a directory, dossiers, discrepancies, and
officers signed in the way people sign in.

Two units under one province (the land registry branch and a commune), each with its officers.
The directory goes in through the directory service, dossiers through ingest's ``store_events``;
discrepancies are inserted as rows (only the reconciler writes them, and the tests need exact
kinds, statuses and holders). A session is opened by the sign-in pages themselves: a link made by
``sessions.create_link``, opened (``GET /sign-in/{token}``), then its button pressed (the POST).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Protocol, TypeVar

import httpx
from fastapi import FastAPI
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.app.asgi import create_app
from services.ingest.service import store_events
from services.reconciler.directory.schemas import OfficerUpdate
from services.reconciler.directory.service import put_officer, put_unit
from services.workspace import sessions
from services.workspace.auth import COOKIE
from services.workspace.config import WorkspaceSettings
from shared.clock import Clock, fixed_clock
from shared.config import ApiKey
from shared.db import unit_of_work
from shared.dvcqg import format_thoi_diem
from shared.events import DossierEvent, parse_envelope
from shared.models import Discrepancy
from tests.conftest import TEST_NOW
from tests.factories import progress, snapshot

T = TypeVar("T")

BASE_URL: Final = "http://doisoat.test"
NOW: Final = TEST_NOW
AT_NOW: Final = fixed_clock(NOW)
PROVINCE: Final = "000.00.00.H08"
UNIT: Final = "000.00.12.H08"  # Chi nhánh Văn phòng đăng ký đất đai
OTHER_UNIT: Final = "000.23.12.H08"  # UBND xã Phan Rí Cửa
ADMIN_KEY: Final = "ws-pages-admin-key-0123456789abcdef"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Person:
    account: str
    full_name: str
    role: str  # desk | handler | leader
    unit_code: str

    @property
    def email(self) -> str:
        return f"{self.account}@tinh.gov.vn"


DESK: Final = Person("vothithuha.vpdkdd", "Võ Thị Thu Hà", "desk", UNIT)
HANDLER: Final = Person("tranthibich.vpdkdd", "Trần Thị Bích", "handler", UNIT)
FELLOW_HANDLER: Final = Person("levancuong.vpdkdd", "Lê Văn Cường", "handler", UNIT)
LEADER: Final = Person("dangvanlam.vpdkdd", "Đặng Văn Lâm", "leader", UNIT)
HANDLER_ELSEWHERE: Final = Person("maivanthanh.phanricua", "Mai Văn Thành", "handler", OTHER_UNIT)
PEOPLE: Final = (DESK, HANDLER, FELLOW_HANDLER, LEADER, HANDLER_ELSEWHERE)


def workspace_settings(database_url: str, **overrides: Any) -> WorkspaceSettings:
    """The API process's settings, read from nothing but these arguments."""
    return WorkspaceSettings(
        database_url=database_url,
        api_keys=[ApiKey(key=ADMIN_KEY, role="admin", account="quantri")],
        _env_file=None,
        **overrides,
    )


def form_token(page: str) -> str:
    """The CSRF token a page's form carries (the session's, or the sign-in double-submit one)."""
    found = CSRF_FIELD.search(page)
    assert found is not None, page
    return found.group(1)


@dataclass
class Workspace:
    """The app with its pages over one database, and the browsers opened on it."""

    engine: AsyncEngine
    settings: WorkspaceSettings
    clock: Clock
    app: FastAPI = field(init=False)
    _browsers: list[httpx.AsyncClient] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.app = create_app(
            self.settings, engine=self.engine, clock=self.clock, workspace=self.settings
        )

    def browser(self) -> httpx.AsyncClient:
        """A fresh browser (an empty cookie jar), over https when the public address is."""
        base = BASE_URL.replace("http://", "https://") if self.settings.secure_cookies else BASE_URL
        opened = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=base)
        self._browsers.append(opened)
        return opened

    async def close(self) -> None:
        for opened in self._browsers:
            await opened.aclose()

    async def run(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        async with unit_of_work(self.engine, "test_workspace") as connection:
            return await work(connection)

    async def link(self, account: str) -> str:
        """A new sign-in link token for ``account``, made now."""
        return await self.run(
            lambda connection: sessions.create_link(
                connection, account, now=self.clock(), requested_from="test"
            )
        )

    async def press_sign_in(self, browser: httpx.AsyncClient, token: str) -> httpx.Response:
        """Open the link, then press its button, as a person does."""
        shown = await browser.get(f"/sign-in/{token}")
        assert shown.status_code == 200, shown.text
        return await browser.post(f"/sign-in/{token}", data={"csrf_token": form_token(shown.text)})

    async def signed_in(self, person: Person) -> httpx.AsyncClient:
        """A browser in which ``person`` has just signed in with a link."""
        browser = self.browser()
        answer = await self.press_sign_in(browser, await self.link(person.account))
        assert answer.status_code == 303, answer.text
        assert browser.cookies.get(COOKIE), answer.headers
        return browser


class MakeWorkspace(Protocol):
    """The ``make_workspace`` fixture: the pages with settings of the test's choosing."""

    def __call__(self, *, clock: Clock = ..., **settings: Any) -> Awaitable[Workspace]: ...


async def seed_directory(engine: AsyncEngine) -> None:
    """The province, its two units and :data:`PEOPLE`, through the directory service."""
    at = NOW - timedelta(days=60)
    async with unit_of_work(engine, "test_seed_directory") as connection:
        await put_unit(
            connection, code=PROVINCE, name="UBND tỉnh", parent_code=None, replaced_by=None, now=at
        )
        for code, name in (
            (UNIT, "Chi nhánh Văn phòng đăng ký đất đai"),
            (OTHER_UNIT, "UBND xã Phan Rí Cửa"),
        ):
            await put_unit(
                connection, code=code, name=name, parent_code=PROVINCE, replaced_by=None, now=at
            )
        for person in PEOPLE:
            await put_officer(
                connection,
                account=person.account,
                officer_in=OfficerUpdate(
                    full_name=person.full_name,
                    unit_code=person.unit_code,
                    role=person.role,
                    email=person.email,
                ),
                now=at,
            )


def dossier_code(number: int, unit: str = UNIT) -> str:
    return f"{unit}-241001-{number:04d}"


async def store_dossiers(ws: Workspace, holders: dict[str, Person]) -> None:
    """Open dossiers received a month ago (code → the handler holding it), through ingest."""
    received = NOW - timedelta(days=30)
    envelopes: list[dict[str, Any]] = []
    for number, (code, holder) in enumerate(holders.items()):
        envelopes.append(
            snapshot(
                code,
                event_id=f"snap-{number}",
                emitted_at=received,
                unit=holder.unit_code,
                NgayTiepNhan=format_thoi_diem(received),
                NgayHenTra=format_thoi_diem(received + timedelta(days=5)),
            )
        )
        envelopes.append(
            progress(
                code,
                event_id=f"step-{number}",
                emitted_at=received + timedelta(hours=1),
                step_at=received + timedelta(hours=1),
                officer=holder.account,
            )
        )
    events = [parse_envelope(envelope) for envelope in envelopes]
    checked = [event for event in events if isinstance(event, DossierEvent)]
    assert len(checked) == len(events)
    await ws.run(lambda connection: store_events(connection, checked, now=received))


async def add_discrepancy(
    ws: Workspace,
    code: str,
    kind: str,
    *,
    holder: Person,
    status: str = "open",
    unit: str | None = None,
) -> int:
    """One discrepancy row as the reconciler leaves it; its id."""
    opened: datetime = NOW - timedelta(days=2)
    values: dict[str, Any] = {
        "dossier_code": code,
        "kind": kind,
        "severity": "critical",
        "status": status,
        "unit_code": unit or holder.unit_code,
        "responsible": holder.account,
        "reporter": None,
        "since": opened - timedelta(hours=1),
        "opened_at": opened,
        "acknowledged_at": opened if status != "open" else None,
        "acknowledged_by": holder.account if status != "open" else None,
        "resolved_at": NOW - timedelta(hours=1) if status == "resolved" else None,
        "details": {"system_status": 4},
        "updated_at": opened,
    }

    async def write(connection: AsyncConnection) -> int:
        inserted = await connection.execute(insert(Discrepancy).values(**values))
        key = inserted.inserted_primary_key
        assert key is not None
        return int(key[0])

    return await ws.run(write)
