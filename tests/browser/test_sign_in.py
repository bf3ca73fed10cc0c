"""Signing in by link, in a real browser (contract §6)."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import Page, expect
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.models import Officer, SignInLink
from tests.browser.conftest import HANDLER, LiveServer, Watched, screenshot, sign_in


def test_a_sign_in_link_works_once(page: Page, directory: LiveServer, watched: Watched) -> None:
    link = directory.sign_in_link(HANDLER.account)
    page.goto(link)
    expect(page.get_by_text(HANDLER.full_name)).to_be_visible()
    screenshot(page, "sign-in")
    page.get_by_role("button", name="Đăng nhập").click()
    expect(page).to_have_url(f"{directory.url}/inbox")
    expect(page.locator("header .who")).to_contain_text(HANDLER.full_name)

    page.goto(link)  # the same link again
    expect(page.get_by_role("alert")).to_contain_text("Liên kết này đã được dùng")
    expect(page.get_by_role("button", name="Đăng nhập")).to_have_count(0)


def test_an_expired_link_does_not_sign_in(page: Page, directory: LiveServer) -> None:
    link = directory.sign_in_link(HANDLER.account)

    async def age(connection: AsyncConnection) -> None:
        await connection.execute(
            update(SignInLink).values(expires_at=directory.clock() - timedelta(seconds=1))
        )

    directory.run(age)
    page.goto(link)
    expect(page.get_by_role("alert")).to_contain_text("hết hạn")
    expect(page.get_by_role("button", name="Đăng nhập")).to_have_count(0)


def test_signing_out_and_deactivation_end_the_session(page: Page, directory: LiveServer) -> None:
    sign_in(page, directory, HANDLER)
    page.get_by_role("button", name="Đăng xuất").click()
    expect(page).to_have_url(f"{directory.url}/sign-in")
    page.goto(f"{directory.url}/inbox")
    expect(page).to_have_url(f"{directory.url}/sign-in")

    sign_in(page, directory, HANDLER)

    async def deactivate(connection: AsyncConnection) -> None:
        await connection.execute(
            update(Officer).where(Officer.account == HANDLER.account).values(active=False)
        )

    directory.run(deactivate)
    page.goto(f"{directory.url}/inbox")
    expect(page).to_have_url(f"{directory.url}/sign-in")


def test_asking_for_a_link_answers_the_same_for_anyone(page: Page, directory: LiveServer) -> None:
    for who in (HANDLER.account, "khong-co-ai"):
        page.goto(f"{directory.url}/sign-in")
        page.get_by_label("Tài khoản hoặc email công vụ").fill(who)
        page.get_by_role("button", name="Gửi liên kết đăng nhập").click()
        expect(page.get_by_role("status")).to_contain_text("Nếu tài khoản hoặc email này")
