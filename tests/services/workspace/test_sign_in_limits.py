"""Asking for sign-in links is limited (contract §6, ``DOISOAT_SIGN_IN_REQUESTS_PER_HOUR``).

Whoever types an account into ``/sign-in`` makes doisoat mail that officer: without a limit, a
stranger could bury an officer's mailbox. Beyond the limit no link is made and nothing is mailed,
and the page answers as it does for an account that does not exist, so that the limit tells a
stranger nothing about who is in the directory.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.workspace import sessions
from shared.models import SignInLink
from tests.fakes.smtp_server import FakeSmtpServer
from tests.services.workspace.page_world import (
    HANDLER,
    LEADER,
    NOW,
    MakeWorkspace,
    Workspace,
    form_token,
)

LIMIT = 2
SENT_NOTICE = "một liên kết đăng nhập đã được gửi tới email của anh/chị"


async def limited_workspace(make: MakeWorkspace, relay: FakeSmtpServer) -> Workspace:
    return await make(smtp_host=relay.host, smtp_port=relay.port, sign_in_requests_per_hour=LIMIT)


async def ask_for_link(browser: httpx.AsyncClient, who: str) -> httpx.Response:
    """Type ``who`` into the sign-in form and send it."""
    shown = await browser.get("/sign-in")
    assert shown.status_code == 200
    return await browser.post("/sign-in", data={"who": who, "csrf_token": form_token(shown.text)})


async def links_of(ws: Workspace, account: str) -> int:
    async def count(connection: AsyncConnection) -> int:
        found = await connection.execute(
            select(func.count()).select_from(SignInLink).where(SignInLink.account == account)
        )
        return int(found.scalar_one())

    return await ws.run(count)


def mailed_to(relay: FakeSmtpServer, address: str) -> int:
    return sum(address in mail.rcpt_tos for mail in relay.handler.messages())


async def test_no_link_is_made_or_mailed_beyond_the_hourly_limit(
    make_workspace: MakeWorkspace, smtp_relay: FakeSmtpServer
) -> None:
    """The limit is what it says: the requests after it change nothing and send nothing."""
    ws = await limited_workspace(make_workspace, smtp_relay)
    browser = ws.browser()
    for _ in range(LIMIT + 2):
        answer = await ask_for_link(browser, HANDLER.account)
        assert answer.status_code == 200
    assert await links_of(ws, HANDLER.account) == LIMIT
    assert mailed_to(smtp_relay, HANDLER.email) == LIMIT


async def test_a_request_beyond_the_limit_answers_as_for_an_unknown_account(
    make_workspace: MakeWorkspace, smtp_relay: FakeSmtpServer
) -> None:
    """A distinct answer would tell a stranger that the account exists (contract §6: "answering
    the same whether or not the account exists")."""
    ws = await limited_workspace(make_workspace, smtp_relay)
    browser = ws.browser()
    for _ in range(LIMIT):
        await ask_for_link(browser, HANDLER.account)
    limited = await ask_for_link(browser, HANDLER.account)
    unknown = await ask_for_link(browser, "khong.co.trong.danh.ba")
    assert limited.status_code == unknown.status_code == 200
    assert SENT_NOTICE in limited.text
    assert limited.text == unknown.text


async def test_the_limit_counts_per_account(
    make_workspace: MakeWorkspace, smtp_relay: FakeSmtpServer
) -> None:
    """One officer's requests never keep another officer from signing in."""
    ws = await limited_workspace(make_workspace, smtp_relay)
    browser = ws.browser()
    for _ in range(LIMIT + 1):
        await ask_for_link(browser, HANDLER.account)
    await ask_for_link(browser, LEADER.email)  # by email this time
    assert await links_of(ws, LEADER.account) == 1
    assert mailed_to(smtp_relay, LEADER.email) == 1


async def test_links_older_than_an_hour_no_longer_count(
    make_workspace: MakeWorkspace, smtp_relay: FakeSmtpServer
) -> None:
    """The limit is per hour: yesterday's requests, or those of an hour ago, are forgiven."""
    ws = await limited_workspace(make_workspace, smtp_relay)
    for _ in range(LIMIT):
        await ws.run(
            lambda connection: sessions.create_link(
                connection,
                HANDLER.account,
                now=NOW - timedelta(minutes=61),
                requested_from="test",
            )
        )
    await ask_for_link(ws.browser(), HANDLER.account)
    assert await links_of(ws, HANDLER.account) == LIMIT + 1
    assert mailed_to(smtp_relay, HANDLER.email) == 1
