"""Browser tests: Debian's chromium driven by Playwright against a live server on PostgreSQL.

No browser is downloaded (never ``playwright install``): chromium is the Debian package, launched
with ``executable_path``. The server runs in a thread on a free loopback port with its own event
loop; the test seeds the database through the domain services on a loop of its own. Every page a
test opens is watched: a request to any other server than the live one fails the test.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn
from playwright.sync_api import Page
from sqlalchemy.ext.asyncio import AsyncConnection

from services.app.asgi import create_app
from services.reconciler.directory.schemas import OfficerUpdate
from services.reconciler.directory.service import put_officer, put_unit
from services.workspace import sessions
from services.workspace.config import WorkspaceSettings
from shared import migrate
from shared.clock import Clock, system_clock
from shared.config import ApiKey
from shared.db import create_engine, unit_of_work
from tests.support import postgres
from tests.support.processes import free_port

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
ADMIN_KEY = "admin-key-0123456789abcdef"
T = TypeVar("T")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """Debian's chromium, headless, with nothing of its own reaching out to the network."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: apt-get install -y chromium (CI's .ci/run does)")
    return {
        "executable_path": CHROMIUM,
        "headless": True,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args() -> dict[str, Any]:
    return {
        "locale": "vi-VN",
        "timezone_id": "Asia/Ho_Chi_Minh",
        "viewport": {"width": 1280, "height": 900},
    }


@dataclass
class LiveServer:
    """doisoat serving the API and the pages on a free port, against ``database_url``."""

    database_url: str
    port: int
    clock: Clock = system_clock
    server: uvicorn.Server | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """``work`` in one unit of work, on a loop of its own in a thread: Playwright's sync API
        keeps an event loop running in the test's thread."""

        async def main() -> T:
            engine = create_engine(self.database_url)
            try:
                async with unit_of_work(engine, "browser_test") as connection:
                    return await work(connection)
            finally:
                await engine.dispose()

        return postgres.run_coro_blocking(main)

    def sign_in_link(self, account: str) -> str:
        async def work(connection: AsyncConnection) -> str:
            return await sessions.create_link(
                connection, account, now=self.clock(), requested_from="test"
            )

        return f"{self.url}/sign-in/{self.run(work)}"


@pytest.fixture(scope="session")
def browser_template(pg_server: str) -> Iterator[str]:
    """A migrated database the browser tests' databases are cloned from (made without the
    pytest-asyncio loop, which Playwright's running loop would refuse)."""
    name = f"doisoat_browser_{uuid.uuid4().hex[:8]}"
    postgres.run_coro_blocking(lambda: postgres.create_database(pg_server, name))
    with ThreadPoolExecutor(max_workers=1) as pool:  # alembic runs a loop of its own
        pool.submit(migrate.upgrade, postgres.database_url(pg_server, name)).result()
    yield name
    postgres.run_coro_blocking(lambda: postgres.drop_database(pg_server, name))


@pytest.fixture
def browser_database(pg_server: str, browser_template: str) -> Iterator[str]:
    name = f"doisoat_browser_{uuid.uuid4().hex[:12]}"
    postgres.run_coro_blocking(
        lambda: postgres.create_database(pg_server, name, template=browser_template)
    )
    yield postgres.database_url(pg_server, name)
    postgres.run_coro_blocking(lambda: postgres.drop_database(pg_server, name))


@pytest.fixture
def live_server(browser_database: str) -> Iterator[LiveServer]:
    pg_database_url = browser_database
    port = free_port()
    live = LiveServer(pg_database_url, port)
    settings = WorkspaceSettings(
        database_url=pg_database_url,
        public_base_url=live.url,
        api_keys=[ApiKey(key=ADMIN_KEY, role="admin", account="quantri")],
        _env_file=None,
    )
    ready = threading.Event()

    def serve() -> None:
        async def main() -> None:
            engine = create_engine(pg_database_url)
            app = create_app(settings, engine=engine, clock=live.clock, workspace=settings)
            config = uvicorn.Config(
                app, host="127.0.0.1", port=port, log_config=None, access_log=False
            )
            live.server = uvicorn.Server(config)
            ready.set()
            try:
                await live.server.serve()
            finally:
                await engine.dispose()

        asyncio.run(main())

    thread = threading.Thread(target=serve, name="live-server", daemon=True)
    thread.start()
    ready.wait(10)
    for _ in range(200):
        if live.server is not None and live.server.started:
            break
        threading.Event().wait(0.05)
    else:
        pytest.fail("the live server did not start")
    yield live
    assert live.server is not None
    live.server.should_exit = True
    thread.join(15)


@dataclass(frozen=True)
class Person:
    account: str
    full_name: str
    role: str
    unit_code: str


PROVINCE = "000.00.00.H08"
UNIT = "000.00.12.H08"  # Chi nhánh Văn phòng đăng ký đất đai
OTHER_UNIT = "000.23.12.H08"  # UBND xã Phan Rí Cửa
DESK = Person("vothithuha.vpdkdd", "Võ Thị Thu Hà", "desk", UNIT)
HANDLER = Person("tranthibich.vpdkdd", "Trần Thị Bích", "handler", UNIT)
LEADER = Person("dangvanlam.vpdkdd", "Đặng Văn Lâm", "leader", UNIT)
OTHER_HANDLER = Person("maivanthanh.phanricua", "Mai Văn Thành", "handler", OTHER_UNIT)
PEOPLE = (DESK, HANDLER, LEADER, OTHER_HANDLER)


def seed_directory(live: LiveServer, now: datetime | None = None) -> None:
    """The province, two units and their officers (each with an email), through the directory."""
    moment = now or live.clock()

    async def work(connection: AsyncConnection) -> None:
        await put_unit(
            connection,
            code=PROVINCE,
            name="UBND tỉnh",
            parent_code=None,
            replaced_by=None,
            now=moment,
        )
        for code, name in (
            (UNIT, "Chi nhánh VPĐKĐĐ Tuy Phong"),
            (OTHER_UNIT, "UBND xã Phan Rí Cửa"),
        ):
            await put_unit(
                connection, code=code, name=name, parent_code=PROVINCE, replaced_by=None, now=moment
            )
        for person in PEOPLE:
            officer = OfficerUpdate(
                full_name=person.full_name,
                unit_code=person.unit_code,
                role=person.role,
                email=f"{person.account}@example.gov.vn",
            )
            await put_officer(connection, account=person.account, officer_in=officer, now=moment)

    live.run(work)


@pytest.fixture
def directory(live_server: LiveServer) -> LiveServer:
    seed_directory(live_server)
    return live_server


class Watched:
    """Every request a page makes; the test fails if one goes to another server."""

    def __init__(self, page: Page, origin: str) -> None:
        self.origin = origin
        self.elsewhere: list[str] = []
        page.on("request", self._seen)

    def _seen(self, request: Any) -> None:
        url = str(request.url)
        if not (url.startswith(self.origin) or url.startswith(("data:", "blob:", "about:"))):
            self.elsewhere.append(url)


@pytest.fixture
def watched(page: Page, live_server: LiveServer) -> Iterator[Watched]:
    seen = Watched(page, live_server.url)
    yield seen
    assert seen.elsewhere == [], f"requests to other servers: {seen.elsewhere}"


def sign_in(page: Page, live: LiveServer, person: Person) -> None:
    """Open a fresh sign-in link and press the button, as an officer would."""
    page.goto(live.sign_in_link(person.account))
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_load_state("networkidle")


def screenshot(page: Page, name: str) -> None:
    """Keep a screenshot for the README (``make screenshots`` sets DOISOAT_SCREENSHOTS=1)."""
    if os.environ.get("DOISOAT_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
