"""The desk's return register (``/returns``, contract §6), in a real browser."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.access import audit
from services.ingest.service import store_events
from services.reconciler.reports import service as reports_service
from services.reconciler.reports.schemas import FieldReportCreate
from shared.clock import VN_TZ
from shared.events import DossierEvent, parse_envelope
from shared.models import FieldReport
from tests.browser.conftest import (
    DESK,
    HANDLER,
    LEADER,
    UNIT,
    LiveServer,
    Watched,
    screenshot,
    sign_in,
)
from tests.factories import snapshot

LAND = "Đăng ký biến động quyền sử dụng đất"
HOSTILE = "<script>alert('tthc')</script> Cấp giấy phép xây dựng"
WITHDRAW = re.compile(r"^Hủy ghi nhận hồ sơ ")


def codes(live: LiveServer) -> tuple[str, str, str]:
    """Two dossiers the system has sent, and one it has not (all received today)."""
    today = live.clock().astimezone(VN_TZ).strftime("%y%m%d")
    return f"{UNIT}-{today}-0042", f"{UNIT}-{today}-0043", f"{UNIT}-{today}-0999"


def seed_dossiers(live: LiveServer, *known: tuple[str, str]) -> None:
    """Snapshots of ``known`` (code, TenTTHC), through ingest as the procedure system sends them."""
    now = live.clock()
    events = [
        parse_envelope(
            snapshot(
                code, event_id=f"snap-{code}", emitted_at=now - timedelta(hours=2), TenTTHC=name
            )
        )
        for code, name in known
    ]
    assert all(isinstance(event, DossierEvent) for event in events)

    async def work(connection: AsyncConnection) -> None:
        await store_events(connection, events, now=now)  # type: ignore[arg-type]

    live.run(work)


def stored(live: LiveServer) -> list[tuple[str, str, str, str]]:
    """(dossier, kind, officer, unit) of every stored report, by dossier and kind."""

    async def work(connection: AsyncConnection) -> list[Any]:
        rows = await connection.execute(
            select(
                FieldReport.dossier_code,
                FieldReport.kind,
                FieldReport.officer,
                FieldReport.unit_code,
            ).order_by(FieldReport.dossier_code, FieldReport.kind)
        )
        return [tuple(row) for row in rows.all()]

    return live.run(work)


def record_report(live: LiveServer, code: str, *, officer: str, minutes_ago: int) -> str:
    """A report recorded ``minutes_ago`` through the API's write path; its ``report_id``."""
    now = live.clock()
    occurred = max(
        now - timedelta(minutes=minutes_ago),
        now.astimezone(VN_TZ).replace(hour=0, minute=0, second=0, microsecond=0),
    )
    report = FieldReportCreate(
        report_id=f"motcua-{code}",
        dossier_code=code,
        kind="returned",
        occurred_at=occurred,
        officer=officer,
        unit_code=UNIT,
    )

    async def work(connection: AsyncConnection) -> None:
        received = now - timedelta(minutes=minutes_ago)
        await reports_service.store_report(connection, report, channel="api", now=received)

    live.run(work)
    return report.report_id


def _refusals_into(found: list[str]) -> Callable[[ConsoleMessage], None]:
    def seen(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:  # a refused script, style or handler
            found.append(message.text)

    return seen


def scan(page: Page, code: str) -> None:
    """What a USB barcode scanner does: type the code into the focused field, then Enter."""
    page.keyboard.type(code)
    page.keyboard.press("Enter")


def status_line(page: Page) -> Locator:
    return page.locator("#scan-status")


def rows(page: Page) -> Locator:
    return page.locator("#today tbody tr")


def test_the_desk_scans_three_codes_sees_todays_list_and_withdraws_one(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    known, hostile, unknown = codes(directory)
    seed_dossiers(directory, (known, LAND), (hostile, HOSTILE))
    refused: list[str] = []
    page.on("console", _refusals_into(refused))
    sign_in(page, directory, DESK)
    expect(page).to_have_url(f"{directory.url}/returns")
    field = page.get_by_label("Mã hồ sơ")
    expect(field).to_be_focused()
    expect(page.get_by_label("Loại")).to_have_value("tra_ket_qua")

    scan(page, known)
    expect(status_line(page)).to_contain_text(f"Đã ghi nhận: hồ sơ {known} — Trả kết quả, lúc")
    expect(field).to_have_value("")
    expect(field).to_be_focused()
    scan(page, hostile)
    expect(status_line(page)).to_contain_text(f"hồ sơ {hostile}")
    scan(page, unknown)
    expect(status_line(page)).to_contain_text("chưa có trên hệ thống")
    expect(rows(page)).to_have_count(3)
    scan(page, known)  # the same one again
    first_time = rows(page).filter(has_text=known).locator("td").first.inner_text()
    expect(status_line(page)).to_contain_text("Đã ghi nhận trước đó")
    expect(status_line(page)).to_contain_text(f"đã ghi nhận lúc {first_time} bởi {DESK.full_name}")
    expect(field).to_be_focused()

    expect(rows(page)).to_have_count(3)
    assert re.fullmatch(r"\d{2}:\d{2}", first_time)
    known_row = rows(page).filter(has_text=known)
    expect(known_row).to_contain_text(LAND)
    expect(known_row).to_contain_text("Trả kết quả")
    expect(known_row).to_contain_text(DESK.full_name)
    expect(rows(page).filter(has_text=hostile)).to_contain_text(HOSTILE)  # as text, not a script
    expect(rows(page).filter(has_text=unknown)).to_contain_text("chưa có trên hệ thống")
    expect(rows(page).filter(has_text=known)).not_to_contain_text("chưa có trên hệ thống")
    screenshot(page, "returns")

    page.get_by_role("button", name=f"Hủy ghi nhận hồ sơ {unknown} (Trả kết quả)").click()
    expect(status_line(page)).to_contain_text(f"Đã hủy ghi nhận: hồ sơ {unknown} — Trả kết quả")
    expect(rows(page)).to_have_count(2)
    expect(field).to_be_focused()
    assert stored(directory) == [
        (known, "returned", DESK.account, UNIT),
        (hostile, "returned", DESK.account, UNIT),
    ]

    async def audit_log(connection: AsyncConnection) -> list[Any]:
        entries, _ = await audit.list_entries(
            connection, account=DESK.account, action=None, since=None, limit=50, offset=0
        )
        return [(entry.action, entry.target, entry.status_code) for entry in entries]

    logged = directory.run(audit_log)
    withdrawal = "POST /returns/{dossier_code}/reports/{report_id}/withdraw"
    [(_, target, status_code)] = [entry for entry in logged if entry[0] == withdrawal]
    assert target.startswith(f"dossier_code={unknown} report_id=web-") and status_code == 200
    assert sum(1 for entry in logged if entry[0] == "POST /returns") == 4
    assert refused == []


def test_the_register_used_with_the_keyboard_alone(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    known, _, unknown = codes(directory)
    seed_dossiers(directory, (known, LAND))
    sign_in(page, directory, DESK)
    field = page.get_by_label("Mã hồ sơ")
    expect(field).to_be_focused()

    scan(page, known)
    expect(rows(page)).to_have_count(1)
    page.keyboard.press("Tab")  # to «Loại»
    expect(page.get_by_label("Loại")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_label("Loại")).to_have_value("rut_ho_so")
    page.keyboard.press("Shift+Tab")
    expect(field).to_be_focused()
    scan(page, unknown)
    expect(status_line(page)).to_contain_text(f"Đã ghi nhận: hồ sơ {unknown} — Rút hồ sơ")
    expect(rows(page).filter(has_text=unknown)).to_contain_text("Rút hồ sơ")
    expect(field).to_be_focused()

    for _ in range(12):  # Tab along: the form, then the list, to the first withdraw button
        page.keyboard.press("Tab")
        if WITHDRAW.match(page.evaluate("document.activeElement.getAttribute('aria-label') || ''")):
            break
    focused = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert focused == f"Hủy ghi nhận hồ sơ {unknown} (Rút hồ sơ)"  # newest first
    page.keyboard.press("Enter")
    expect(status_line(page)).to_contain_text(f"Đã hủy ghi nhận: hồ sơ {unknown} — Rút hồ sơ")
    expect(rows(page)).to_have_count(1)
    expect(field).to_be_focused()
    assert stored(directory) == [(known, "returned", DESK.account, UNIT)]


def test_a_code_that_is_not_a_dossier_code_is_refused_and_nothing_is_stored(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    sign_in(page, directory, DESK)
    scan(page, "8934563138165")  # a product's barcode
    expect(status_line(page)).to_contain_text("«8934563138165» không phải mã hồ sơ")
    expect(status_line(page)).to_contain_text("Chưa ghi nhận gì")
    expect(page.get_by_label("Mã hồ sơ")).to_be_focused()
    expect(page.locator("#today")).to_contain_text("Chưa có hồ sơ nào được ghi nhận hôm nay")
    assert stored(directory) == []


def test_a_handler_gets_403_and_a_leader_reads_the_register_without_the_form(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    sign_in(page, directory, HANDLER)
    answer = page.goto(f"{directory.url}/returns")
    assert answer is not None and answer.status == 403
    expect(page.get_by_role("alert")).to_contain_text("không dành cho vai trò")
    expect(page.get_by_role("link", name="Sổ trả kết quả")).to_have_count(0)
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    posted = page.request.post(
        f"{directory.url}/returns",
        form={"ma_ho_so": codes(directory)[0], "loai": "tra_ket_qua", "csrf_token": token or ""},
    )
    assert posted.status == 403
    assert stored(directory) == []

    page.context.clear_cookies()
    _, _, unknown = codes(directory)
    record_report(directory, unknown, officer=DESK.account, minutes_ago=1)
    sign_in(page, directory, LEADER)
    page.goto(f"{directory.url}/returns")
    expect(page.get_by_label("Mã hồ sơ")).to_have_count(0)
    expect(rows(page).filter(has_text=unknown)).to_contain_text(DESK.full_name)
    expect(page.get_by_role("button", name=WITHDRAW)).to_have_count(0)


def test_no_withdrawal_of_another_officers_report_nor_after_thirty_minutes(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    known, hostile, _ = codes(directory)
    others = record_report(directory, known, officer="lethic.motcua", minutes_ago=2)
    old = record_report(directory, hostile, officer=DESK.account, minutes_ago=31)
    sign_in(page, directory, DESK)
    expect(rows(page)).to_have_count(2)
    expect(page.get_by_role("button", name=WITHDRAW)).to_have_count(0)
    token = page.locator("#scan-form input[name=csrf_token]").get_attribute("value") or ""
    for code, report_id in ((known, others), (hostile, old)):
        answer = page.request.post(
            f"{directory.url}/returns/{code}/reports/{report_id}/withdraw",
            form={"csrf_token": token},
        )
        assert answer.status == 403
    assert len(stored(directory)) == 2


def test_without_javascript_the_register_still_records(
    browser: Browser, directory: LiveServer
) -> None:
    context = browser.new_context(java_script_enabled=False, locale="vi-VN")
    page = context.new_page()
    watched = Watched(page, directory.url)
    try:
        known, _, _ = codes(directory)
        sign_in(page, directory, DESK)
        page.get_by_label("Mã hồ sơ").fill(known)
        page.get_by_label("Loại").select_option("rut_ho_so")
        page.get_by_label("Mã hồ sơ").press("Enter")
        expect(page).to_have_url(re.compile(r"/returns\?ghi_nhan=web-"))
        expect(status_line(page)).to_contain_text(f"Đã ghi nhận: hồ sơ {known} — Rút hồ sơ")
        expect(page.get_by_label("Loại")).to_have_value("rut_ho_so")
        page.get_by_label("Mã hồ sơ").fill(known)
        page.get_by_label("Mã hồ sơ").press("Enter")
        expect(status_line(page)).to_contain_text("Đã ghi nhận trước đó")
        page.get_by_label("Mã hồ sơ").fill("không phải mã")
        page.get_by_label("Mã hồ sơ").press("Enter")
        expect(status_line(page)).to_contain_text("«không phải mã» không phải mã hồ sơ")
        page.get_by_role("button", name=WITHDRAW).click()
        expect(status_line(page)).to_contain_text(f"Đã hủy ghi nhận: hồ sơ {known} — Rút hồ sơ")
        expect(rows(page)).to_have_count(0)
        assert stored(directory) == []
        assert watched.elsewhere == []
    finally:
        context.close()
