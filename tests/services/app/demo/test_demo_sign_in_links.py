"""``doisoat demo`` prints three sign-in links (contract §6: "the demo prints one per role";
README "The officers' workspace in your browser"): a desk officer, a handler and a leader of the
same unit, each signing in as that role.

A newcomer's first look at the workspace is through these links: each must open the page of its
role. The demo runs once, as ``make demo`` runs it (a process of its own, configured by its
environment), on a PostgreSQL database of this module's; the pages then run over that database.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.workspace.pages.home import HOME_BY_ROLE
from shared.clock import system_clock
from shared.db import create_engine
from shared.models import Officer
from tests.services.workspace.page_world import BASE_URL, Workspace, workspace_settings
from tests.support import postgres

DOISOAT = [sys.executable, "-m", "services.app.cli"]
REPO = Path(__file__).resolve().parents[4]
ROLE_OF_LABEL = {"Một cửa": "desk", "Xử lý": "handler", "Lãnh đạo": "leader"}
# "    Một cửa   Võ Thị Thu Hà (vothithuha.vpdkdd):\n      http://…/sign-in/…"
PRINTED_LINK = re.compile(
    r"^\s+(?P<label>Một cửa|Xử lý|Lãnh đạo)\s+(?P<name>[^\n]+?) \((?P<account>[^()\s]+)\):\n"
    r"\s+(?P<link>\S+/sign-in/[A-Za-z0-9_-]+)$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class PrintedLink:
    label: str
    full_name: str
    account: str
    link: str

    @property
    def token(self) -> str:
        return self.link.rsplit("/sign-in/", 1)[1]


@dataclass
class Demo:
    output: str
    links: list[PrintedLink]
    workspace: Workspace


@pytest.fixture(scope="module")
async def demo(
    pg_server: str, pg_template: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Demo]:
    """``doisoat demo`` once on an empty database, then the pages over it at the real time."""
    name = f"doisoat_demo_links_{uuid.uuid4().hex[:12]}"
    await postgres.create_database(pg_server, name, template=pg_template)
    url = postgres.database_url(pg_server, name)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DOISOAT_")}
    result = await asyncio.to_thread(
        subprocess.run,
        [*DOISOAT, "demo", "--dossiers", "50", "--seed", "3"],
        cwd=tmp_path_factory.mktemp("demo"),
        env={
            **clean,
            "PYTHONPATH": str(REPO),
            "DOISOAT_DATABASE_URL": url,
            "DOISOAT_PUBLIC_BASE_URL": BASE_URL,
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    engine = create_engine(url)
    workspace = Workspace(engine, workspace_settings(url, public_base_url=BASE_URL), system_clock)
    try:
        assert result.returncode == 0, result.stderr
        links = [
            PrintedLink(m["label"], m["name"], m["account"], m["link"])
            for m in PRINTED_LINK.finditer(result.stdout)
        ]
        yield Demo(result.stdout, links, workspace)
    finally:
        await workspace.close()
        await engine.dispose()
        await postgres.drop_database(pg_server, name)


async def test_the_demo_prints_a_link_for_a_desk_officer_a_handler_and_a_leader(
    demo: Demo,
) -> None:
    """Three links, one per role, for officers of one unit as the directory has them."""
    assert [printed.label for printed in demo.links] == list(ROLE_OF_LABEL), demo.output

    async def officers(connection: AsyncConnection) -> dict[str, tuple[str, str, str]]:
        rows = await connection.execute(
            select(Officer.account, Officer.full_name, Officer.role, Officer.unit_code).where(
                Officer.account.in_([printed.account for printed in demo.links])
            )
        )
        return {row.account: (row.full_name, row.role, row.unit_code) for row in rows.all()}

    found = await demo.workspace.run(officers)
    units = set()
    for printed in demo.links:
        full_name, role, unit = found[printed.account]
        assert (printed.full_name, role) == (full_name, ROLE_OF_LABEL[printed.label])
        units.add(unit)
    assert len(units) == 1


@pytest.mark.parametrize("label", list(ROLE_OF_LABEL))
async def test_each_demo_link_signs_in_as_its_role(demo: Demo, label: str) -> None:
    """Pressed, the link signs its officer in, and their home is the page of their role."""
    (printed,) = [printed for printed in demo.links if printed.label == label]
    browser = demo.workspace.browser()
    signed_in = await demo.workspace.press_sign_in(browser, printed.token)
    assert signed_in.status_code == 303, signed_in.text

    home = await browser.get("/")
    assert home.status_code == 303
    assert home.headers["location"] == HOME_BY_ROLE[ROLE_OF_LABEL[label]]
    page = await browser.get(home.headers["location"])
    assert page.status_code == 200
    assert f"{printed.full_name} · {label} ·" in page.text


async def test_the_demo_links_are_at_the_public_base_url(demo: Demo) -> None:
    """Contract §6: a link is ``{DOISOAT_PUBLIC_BASE_URL}/sign-in/{token}``, the demo's too —
    a demo run on a server is opened at that server's address, not at localhost."""
    assert demo.links
    for printed in demo.links:
        assert printed.link.startswith(f"{BASE_URL}/sign-in/"), printed.link
