"""The inbox in a real browser (contract §6): a handler works their unit's discrepancies."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.ingest.service import store_events
from services.reconciler.config import ReconcilerSettings
from services.reconciler.worker import Reconciler
from shared.dvcqg import format_thoi_diem
from shared.events import DossierEvent, parse_envelope
from shared.models import Discrepancy, DiscrepancyHistory
from tests.browser.conftest import (
    DESK,
    HANDLER,
    LEADER,
    OTHER_HANDLER,
    OTHER_UNIT,
    UNIT,
    LiveServer,
    Watched,
    screenshot,
    sign_in,
)
from tests.factories import progress, snapshot

LAND = "Đất đai"
CIVIL = "Hộ tịch"
HOSTILE = "<script>alert('x')</script> Cấp đổi sổ đỏ"


@dataclass(frozen=True)
class Seeded:
    """The dossiers planted for a test, by what the test needs of them."""

    land: tuple[str, str]  # two of the handler's unit, field Đất đai
    civil: str  # one of the handler's unit, field Hộ tịch, with a hostile procedure name
    elsewhere: str  # one of the other unit


def seed_overdue_dossiers(live: LiveServer) -> Seeded:
    """Open, overdue dossiers held by the handlers, then the reconciler judges them: each opens
    ``OVERDUE_NO_APOLOGY`` (critical) and ``STALLED`` (warning)."""
    now = live.clock()
    received = now - timedelta(days=30)
    seeded = Seeded(
        land=(f"{UNIT}-260101-0001", f"{UNIT}-260101-0002"),
        civil=f"{UNIT}-260101-0003",
        elsewhere=f"{OTHER_UNIT}-260101-0004",
    )
    plan = [
        (seeded.land[0], UNIT, LAND, "Đăng ký biến động đất đai", HANDLER.account),
        (seeded.land[1], UNIT, LAND, "Đăng ký biến động đất đai", HANDLER.account),
        (seeded.civil, UNIT, CIVIL, HOSTILE, HANDLER.account),
        (seeded.elsewhere, OTHER_UNIT, CIVIL, "Đăng ký khai sinh", OTHER_HANDLER.account),
    ]
    envelopes: list[dict[str, Any]] = []
    for number, (code, unit, field, procedure, officer) in enumerate(plan):
        moment = received + timedelta(minutes=number)
        envelopes.append(
            snapshot(
                code,
                event_id=f"s-{number}",
                emitted_at=moment,
                unit=unit,
                TenLinhVuc=field,
                TenTTHC=procedure,
                NgayTiepNhan=format_thoi_diem(moment),
                NgayHenTra=format_thoi_diem(received + timedelta(days=5)),
            )
        )
        envelopes.append(
            progress(
                code,
                event_id=f"p-{number}",
                emitted_at=moment + timedelta(hours=1),
                step_at=moment + timedelta(hours=1),
                officer=officer,
            )
        )
    events = [parse_envelope(envelope) for envelope in envelopes]

    async def store(connection: AsyncConnection) -> None:
        assert all(isinstance(event, DossierEvent) for event in events)
        await store_events(connection, events, now=now)  # type: ignore[arg-type]

    async def judge(connection: AsyncConnection) -> int:
        settings = ReconcilerSettings(database_url=live.database_url, _env_file=None)
        return await Reconciler(settings, connection.engine, live.clock).drain()

    live.run(store)
    assert live.run(judge) == len(plan)
    return seeded


def discrepancies(live: LiveServer) -> list[Any]:
    async def read(connection: AsyncConnection) -> list[Any]:
        rows = await connection.execute(select(Discrepancy).order_by(Discrepancy.id))
        return list(rows.all())

    return live.run(read)


def unacknowledged_badge(page: Page) -> int:
    badge = page.locator("[data-badge=unacknowledged]")
    expect(badge).to_have_text(re.compile(r"^\d[\d.]*$"))
    return int(badge.inner_text().replace(".", ""))


def listed_codes(page: Page) -> set[str]:
    return set(page.locator("#inbox tbody td.code").all_inner_texts())


def test_a_handler_acknowledges_two_discrepancies_and_the_badge_drops(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    seeded = seed_overdue_dossiers(directory)
    sign_in(page, directory, HANDLER)
    expect(page).to_have_url(f"{directory.url}/inbox")
    expect(page.get_by_role("heading", name="Sai lệch cần xử lý")).to_be_visible()
    before = unacknowledged_badge(page)
    assert before == 6  # three dossiers, two kinds each, all held by the handler
    expect(page.locator("[data-count=open]")).to_have_text("6")

    page.get_by_label("Loại sai lệch").select_option("OVERDUE_NO_APOLOGY")
    expect(page.locator("#inbox tbody tr")).to_have_count(3)
    expect(page).to_have_url(re.compile(r"kind=OVERDUE_NO_APOLOGY"))
    page.get_by_role("button", name="Xác nhận các sai lệch đã chọn").click()  # nothing ticked
    expect(page.get_by_role("alert")).to_have_text("Hãy chọn ít nhất một sai lệch để xác nhận.")
    for code in seeded.land:
        page.get_by_label(f"Chọn sai lệch hồ sơ {code}").check()
    expect(page.locator("[data-selected]")).to_have_text("Đã chọn 2 sai lệch")
    page.get_by_label("Ghi chú khi xác nhận").fill("Đã liên hệ chuyên viên, sẽ xin lỗi trong ngày.")
    screenshot(page, "inbox")
    page.get_by_role("button", name="Xác nhận các sai lệch đã chọn").click()

    expect(page.get_by_role("status").filter(has_text="Đã xác nhận 2 sai lệch.")).to_be_visible()
    expect(page.locator("[data-badge=unacknowledged]")).to_have_text(str(before - 2))
    expect(page.locator("#inbox tbody tr")).to_have_count(1)  # the civil dossier's is left
    assert listed_codes(page) == {seeded.civil}

    page.get_by_role("link", name=re.compile("^Đã xác nhận")).click()
    expect(page.locator("#inbox tbody tr")).to_have_count(2)
    assert listed_codes(page) == set(seeded.land)
    expect(page.locator("#inbox tbody")).to_contain_text(HANDLER.account)

    acknowledged = [row for row in discrepancies(directory) if row.status == "acknowledged"]
    assert {(row.dossier_code, row.kind) for row in acknowledged} == {
        (code, "OVERDUE_NO_APOLOGY") for code in seeded.land
    }
    assert {row.acknowledged_by for row in acknowledged} == {HANDLER.account}

    async def notes(connection: AsyncConnection) -> list[tuple[str | None, str | None]]:
        rows = await connection.execute(
            select(DiscrepancyHistory.actor, DiscrepancyHistory.note).where(
                DiscrepancyHistory.action == "acknowledged"
            )
        )
        return [(actor, note) for actor, note in rows.all()]

    assert (
        directory.run(notes)
        == [(HANDLER.account, "Đã liên hệ chuyên viên, sẽ xin lỗi trong ngày.")] * 2
    )


def test_filters_and_sorting_narrow_the_table(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    seeded = seed_overdue_dossiers(directory)
    sign_in(page, directory, LEADER)
    page.goto(f"{directory.url}/inbox")
    expect(page.locator("#inbox tbody tr")).to_have_count(6)
    # A hostile procedure name is shown as text, never run.
    expect(page.locator("#inbox tbody")).to_contain_text(HOSTILE)

    page.get_by_label("Lĩnh vực").select_option(CIVIL)
    expect(page.locator("#inbox tbody tr")).to_have_count(2)
    assert listed_codes(page) == {seeded.civil}
    expect(page.locator("[data-count=open]")).to_have_text("2")

    page.get_by_label("Mức độ").select_option("warning")
    expect(page.locator("#inbox tbody tr")).to_have_count(1)
    expect(page.locator("#inbox tbody")).to_contain_text("Chậm xử lý, không có tiến độ")

    page.get_by_role("link", name="Bỏ lọc").click()
    expect(page.locator("#inbox tbody tr")).to_have_count(6)
    page.get_by_label("Đơn vị").select_option(UNIT)
    expect(page).to_have_url(re.compile(f"unit={UNIT}"))  # swapped: the same six rows
    expect(page.locator("#inbox tbody tr")).to_have_count(6)

    page.get_by_role("link", name="Mã hồ sơ").click()
    expect(page).to_have_url(re.compile(r"sort=dossier&order=asc"))
    expect(page.locator("th[aria-sort=ascending]")).to_contain_text("Mã hồ sơ")
    codes = page.locator("#inbox tbody td.code").all_inner_texts()
    assert codes == sorted(codes)
    page.get_by_role("link", name="Mã hồ sơ").click()
    expect(page).to_have_url(re.compile(r"sort=dossier$"))  # descending: the default order
    expect(page.locator("th[aria-sort=descending]")).to_contain_text("Mã hồ sơ")
    codes = page.locator("#inbox tbody td.code").all_inner_texts()
    assert codes == sorted(codes, reverse=True)
    expect(page.locator(".pager .range")).to_have_text("1–6 / 6")

    # The same view opened afresh (a bookmark) shows the same rows.
    page.reload()
    assert page.locator("#inbox tbody td.code").all_inner_texts() == codes


def test_another_units_discrepancy_is_neither_listed_nor_acknowledged(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    seeded = seed_overdue_dossiers(directory)
    rows = discrepancies(directory)
    theirs = next(row for row in rows if row.dossier_code == seeded.elsewhere)
    mine = next(row for row in rows if row.dossier_code == seeded.civil)
    sign_in(page, directory, HANDLER)
    for tab in ("open", "acknowledged", "resolved"):
        page.goto(f"{directory.url}/inbox?status={tab}")
        expect(page.locator("#inbox")).not_to_contain_text(seeded.elsewhere)
    expect(page.get_by_label("Đơn vị").locator("option")).to_have_count(2)  # all + UNIT

    answer = page.request.get(f"{directory.url}/inbox?unit={OTHER_UNIT}")
    assert answer.status == 403

    token = page.locator("#ack input[name=csrf_token]").get_attribute("value")
    assert token
    crafted = page.request.post(
        f"{directory.url}/inbox/ack",
        data=f"csrf_token={token}&id={mine.id}&id={theirs.id}&ghi_chu=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        max_redirects=0,
    )
    assert crafted.status == 403
    other_view = page.request.post(  # its own discrepancy, but coming back to another unit
        f"{directory.url}/inbox/ack",
        data=f"csrf_token={token}&id={mine.id}&unit={OTHER_UNIT}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        max_redirects=0,
    )
    assert other_view.status == 403
    without_token = page.request.post(
        f"{directory.url}/inbox/ack",
        data=f"id={mine.id}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        max_redirects=0,
    )
    assert without_token.status == 403
    assert {row.status for row in discrepancies(directory)} == {"open"}  # nothing written

    # The desk reads the inbox but acknowledges nothing (contract §5: officers acknowledge).
    page.context.clear_cookies()
    sign_in(page, directory, DESK)
    page.goto(f"{directory.url}/inbox")
    expect(page.locator("#inbox tbody tr")).to_have_count(6)
    expect(page.locator("#inbox input[name=id]")).to_have_count(0)
    token = page.locator("#ack input[name=csrf_token]").get_attribute("value")
    refused = page.request.post(
        f"{directory.url}/inbox/ack",
        data=f"csrf_token={token}&id={mine.id}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        max_redirects=0,
    )
    assert refused.status == 403
    assert {row.status for row in discrepancies(directory)} == {"open"}


def test_without_javascript_acknowledging_comes_back_to_the_same_view(
    browser: Browser, directory: LiveServer
) -> None:
    seeded = seed_overdue_dossiers(directory)
    context = browser.new_context(java_script_enabled=False, locale="vi-VN")
    try:
        page = context.new_page()
        seen = Watched(page, directory.url)
        sign_in(page, directory, HANDLER)
        page.goto(f"{directory.url}/inbox?field={CIVIL}&sort=dossier&order=asc")
        expect(page.locator("#inbox tbody tr")).to_have_count(2)
        page.get_by_role("button", name="Xác nhận các sai lệch đã chọn").click()
        expect(page.get_by_role("alert")).to_have_text("Hãy chọn ít nhất một sai lệch để xác nhận.")

        page.locator("#inbox tbody input[name=id]").first.check()
        page.get_by_label("Ghi chú khi xác nhận").fill("Đã nhắc chuyên viên.")
        page.get_by_role("button", name="Xác nhận các sai lệch đã chọn").click()
        expect(page).to_have_url(
            re.compile(r"/inbox\?field=.*&sort=dossier&order=asc&da_xac_nhan=1")
        )
        expect(page.get_by_role("status")).to_have_text("Đã xác nhận 1 sai lệch.")
        expect(page.locator("#inbox tbody tr")).to_have_count(1)
        expect(page.locator("[data-count=acknowledged]")).to_have_text("1")

        page.get_by_label("Lĩnh vực").select_option(LAND)
        page.get_by_role("button", name="Lọc").click()
        expect(page.locator("#inbox tbody tr")).to_have_count(4)
        assert listed_codes(page) == set(seeded.land)
        assert seen.elsewhere == []
    finally:
        context.close()


def test_every_column_shows_on_a_1280_pixel_screen(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    seed_overdue_dossiers(directory)
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, directory, HANDLER)
    expect(page.locator("#inbox tbody tr")).to_have_count(6)
    # the open tab says what the status is: no column repeats it on every row
    expect(page.get_by_role("columnheader", name="Trạng thái")).to_have_count(0)
    table = page.locator(".table-wrap")
    assert table.evaluate("wrap => wrap.scrollWidth <= wrap.clientWidth"), "the table scrolls"
