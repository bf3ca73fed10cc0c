"""``doisoat sign-in-link ACCOUNT`` and ``doisoat sign-out ACCOUNT`` (contract §6), run as an
operator runs them, against the pages over the same PostgreSQL database.

Without email, the printed link is the only way in; and when an officer loses a laptop, the
operator must be able to end their sessions at once, without touching anyone else's.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.workspace.auth import COOKIE
from shared.clock import system_clock
from shared.models import SignInLink
from tests.services.workspace.page_world import (
    BASE_URL,
    HANDLER,
    LEADER,
    Workspace,
    seed_directory,
    workspace_settings,
)

DOISOAT = [sys.executable, "-m", "services.app.cli"]
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
async def workspace(pg_engine: AsyncEngine, pg_database_url: str) -> AsyncIterator[Workspace]:
    """The pages on the commands' database, at the real time (the commands' clock)."""
    await seed_directory(pg_engine)
    built = Workspace(
        pg_engine, workspace_settings(pg_database_url, public_base_url=BASE_URL), system_clock
    )
    yield built
    await built.close()


async def doisoat(
    args: list[str], database_url: str, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """The command in a process of its own, configured by its environment only."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DOISOAT_")}
    env = {
        **clean,
        "PYTHONPATH": str(REPO),
        "DOISOAT_DATABASE_URL": database_url,
        "DOISOAT_PUBLIC_BASE_URL": BASE_URL,
    }
    return await asyncio.to_thread(
        subprocess.run,
        [*DOISOAT, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def printed_token(account: str, database_url: str, tmp_path: Path) -> str:
    result = await doisoat(["sign-in-link", account], database_url, tmp_path)
    assert result.returncode == 0, result.stderr
    (link,) = result.stdout.split()
    assert link.startswith(f"{BASE_URL}/sign-in/"), link
    return link.removeprefix(f"{BASE_URL}/sign-in/")


async def test_sign_in_link_prints_a_link_that_signs_the_officer_in(
    workspace: Workspace, pg_database_url: str, tmp_path: Path
) -> None:
    """``{DOISOAT_PUBLIC_BASE_URL}/sign-in/{token}``: opened and pressed, it starts a session."""
    token = await printed_token(HANDLER.account, pg_database_url, tmp_path)
    browser = workspace.browser()
    answer = await workspace.press_sign_in(browser, token)
    assert answer.status_code == 303
    assert browser.cookies.get(COOKIE)
    inbox = await browser.get("/inbox")
    assert inbox.status_code == 200
    assert HANDLER.full_name in inbox.text


async def test_the_printed_link_works_only_once(
    workspace: Workspace, pg_database_url: str, tmp_path: Path
) -> None:
    """Whoever finds the link afterwards (in a terminal's history) cannot use it again."""
    token = await printed_token(HANDLER.account, pg_database_url, tmp_path)
    assert (await workspace.press_sign_in(workspace.browser(), token)).status_code == 303
    again = await workspace.browser().get(f"/sign-in/{token}")
    assert again.status_code == 410
    assert "Liên kết này đã được dùng" in again.text


async def test_sign_in_link_refuses_an_account_not_in_the_directory(
    workspace: Workspace, pg_database_url: str, tmp_path: Path
) -> None:
    """No link for nobody: a clear refusal, and nothing written."""
    result = await doisoat(["sign-in-link", "khong.co.that"], pg_database_url, tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "khong.co.that" in result.stderr and "Traceback" not in result.stderr

    async def links(connection: AsyncConnection) -> int:
        return int(
            (await connection.execute(select(func.count()).select_from(SignInLink))).scalar_one()
        )

    assert await workspace.run(links) == 0


async def test_sign_out_ends_every_session_of_the_officer_and_no_one_else_s(
    workspace: Workspace, pg_database_url: str, tmp_path: Path
) -> None:
    """The old cookies no longer sign anyone in; another officer goes on working."""
    laptop = await workspace.signed_in(HANDLER)
    phone = await workspace.signed_in(HANDLER)
    colleague = await workspace.signed_in(LEADER)
    for browser in (laptop, phone, colleague):
        assert (await browser.get("/inbox")).status_code == 200

    result = await doisoat(["sign-out", HANDLER.account], pg_database_url, tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"Đã kết thúc 2 phiên của {HANDLER.account}" in result.stdout

    for browser in (laptop, phone):
        refused = await browser.get("/inbox")
        assert refused.status_code == 303
        assert refused.headers["location"] == "/sign-in"
    assert (await colleague.get("/inbox")).status_code == 200
