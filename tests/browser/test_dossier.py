"""``/dossiers/{code}``: a dossier's whole story, read in a real browser (contract §6)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import docx
from playwright.sync_api import Dialog, Locator, Page, expect
from sqlalchemy.ext.asyncio import AsyncConnection

from services.alerts.config import AlertsSettings
from services.alerts.planner import AlertPlanner
from services.ingest.service import store_events
from services.reconciler.config import ReconcilerSettings
from services.reconciler.forms.apology import proposed_return
from services.reconciler.forms.links import apology_draft_path
from services.reconciler.forms.official import date_words
from services.reconciler.reports import service as reports_service
from services.reconciler.reports.schemas import FieldReportCreate
from services.reconciler.worker import Reconciler
from shared.calendar import WorkingCalendar
from shared.clock import VN_TZ
from shared.db import create_engine
from shared.dvcqg import format_thoi_diem
from shared.events import DossierEvent, parse_envelope
from shared.vocabulary import local_time_text
from tests.browser.conftest import (
    DESK,
    HANDLER,
    LEADER,
    OTHER_HANDLER,
    UNIT,
    LiveServer,
    Watched,
    screenshot,
    sign_in,
)
from tests.factories import progress, snapshot
from tests.support import postgres

CODE = f"{UNIT}-261120-0042"
APPLICANT = "Nguyễn Văn An"
ID_NUMBER = "079123456789"
PROCEDURE = "Đăng ký biến động quyền sử dụng đất"


def seed_life(live: LiveServer, **fields: Any) -> datetime:
    """A dossier received two days ago, asked for documents yesterday (its due date moved),
    handled by the handler, and returned at the desk three hours ago; returns the request's day.
    """
    now = live.clock()
    asked = now - timedelta(days=1, hours=1)
    common: dict[str, Any] = {
        "ChuHoSo": APPLICANT,
        "SoGiayToChuHoSo": ID_NUMBER,
        "TenLinhVuc": "Đất đai",
        "NgayTiepNhan": format_thoi_diem(now - timedelta(days=2)),
        "NgayHenTra": format_thoi_diem(now + timedelta(days=5)),
        **fields,
    }
    step = progress(
        CODE,
        event_id="p1",
        emitted_at=now - timedelta(days=1),
        step_at=now - timedelta(days=1),
        officer=HANDLER.account,
    )
    step["data"]["NgayKetThucTheoQuyDinh"] = format_thoi_diem(now + timedelta(days=3))
    envelopes = [
        snapshot(CODE, event_id="s1", emitted_at=now - timedelta(days=2), status=2, **common),
        snapshot(
            CODE,
            event_id="s2",
            emitted_at=now - timedelta(days=1),
            status=4,
            **common,
            DanhSachHoSoBoSung=[
                {
                    "NgayYeuCau": format_thoi_diem(asked),
                    "NgayHenTraMoi": format_thoi_diem(now + timedelta(days=8)),
                }
            ],
        ),
        step,
    ]
    events = [event for event in map(parse_envelope, envelopes) if isinstance(event, DossierEvent)]

    async def work(connection: AsyncConnection) -> None:
        await store_events(connection, events, now=now)
        await reports_service.store_report(
            connection,
            FieldReportCreate(
                report_id="desk-1",
                dossier_code=CODE,
                kind="returned",
                occurred_at=now - timedelta(hours=3),
                officer=DESK.account,
                unit_code=UNIT,
                note="Công dân đã nhận kết quả tại quầy",
            ),
            channel="api",
            now=now,
        )

    live.run(work)
    judge(live)
    return asked


def judge(live: LiveServer) -> None:
    """Run the reconciler once, with the alerts planner writing the outbox in its transaction."""

    async def main() -> None:
        engine = create_engine(live.database_url)
        planner = AlertPlanner(
            AlertsSettings(database_url=live.database_url, smtp_host="127.0.0.1", _env_file=None)
        )
        reconciler = Reconciler(
            ReconcilerSettings(database_url=live.database_url, _env_file=None),
            engine,
            live.clock,
            on_changes=lambda connection, changes, now: planner.on_changes(
                connection, changes, now=now
            ),
        )
        try:
            await reconciler.drain()
        finally:
            await engine.dispose()

    postgres.run_coro_blocking(main)


def entries(page: Page, source: str) -> Any:
    return page.locator(f"ol.story li[data-source={source}]")


def test_a_handler_reads_a_dossiers_whole_story(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    asked = seed_life(directory)
    sign_in(page, directory, HANDLER)
    page.goto(f"{directory.url}/dossiers/{CODE}")

    expect(page.get_by_role("heading", level=1)).to_contain_text(CODE)
    expect(page.locator("[data-field=procedure]")).to_contain_text(PROCEDURE)
    expect(page.locator("[data-field=field]")).to_have_text("Đất đai")
    expect(page.locator("[data-field=status]")).to_have_text("Đang xử lý")
    expect(page.locator("[data-field=holder]")).to_contain_text(HANDLER.full_name)
    expect(page.locator("[data-field=unit]")).to_contain_text("Chi nhánh VPĐKĐĐ Tuy Phong")
    expect(page.locator("[data-field=due]")).to_contain_text(
        f"Gia hạn do yêu cầu bổ sung ngày {local_time_text(asked)}"
    )

    # Every kind of fact and finding on one timeline, newest first.
    expect(entries(page, "snapshot")).to_have_count(2)
    expect(entries(page, "step")).to_contain_text("Thời hạn theo quy định")
    expect(entries(page, "desk_report")).to_contain_text("Trả kết quả")
    expect(entries(page, "desk_report")).to_contain_text(DESK.full_name)
    expect(entries(page, "discrepancy")).to_contain_text(
        "Phát hiện sai lệch: Đã trả kết quả nhưng hệ thống chưa cập nhật"
    )
    told = entries(page, "notification")
    expect(told.filter(has_text=HANDLER.full_name)).to_contain_text("Chờ gửi")
    expect(told.filter(has_text=DESK.full_name)).to_contain_text("Email")
    expect(entries(page, "snapshot").last).to_contain_text("Lần đồng bộ đầu tiên")
    expect(entries(page, "snapshot").first).to_contain_text("Yêu cầu bổ sung: — → 1 mục")
    screenshot(page, "dossier")

    # The story from its beginning, by keyboard alone.
    page.get_by_role("link", name="Xem từ đầu (cũ nhất trước)").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{directory.url}/dossiers/{CODE}?order=oldest")
    expect(page.locator("ol.story li").first).to_contain_text("Lần đồng bộ đầu tiên")


def test_another_units_dossier_is_forbidden(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    seed_life(directory)
    sign_in(page, directory, OTHER_HANDLER)
    answer = page.goto(f"{directory.url}/dossiers/{CODE}")
    assert answer is not None and answer.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Không có quyền")
    content = page.content()
    assert PROCEDURE not in content and "Nguyễn" not in content and "Đất đai" not in content


def test_an_unknown_dossier_is_a_not_found_page(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    sign_in(page, directory, HANDLER)
    answer = page.goto(f"{directory.url}/dossiers/{UNIT}-000000-9999")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Không tìm thấy")


def test_hostile_fields_stay_text(page: Page, directory: LiveServer, watched: Watched) -> None:
    dialogs: list[str] = []

    def opened(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", opened)
    seed_life(
        directory,
        TenTTHC="<script>alert(1)</script>",
        ChuHoSo="<img src=x onerror=alert(1)>",
    )
    sign_in(page, directory, HANDLER)
    page.goto(f"{directory.url}/dossiers/{CODE}")
    expect(page.locator("[data-field=procedure]")).to_contain_text("<script>alert(1)</script>")
    expect(page.locator("[data-field=applicant]")).to_have_text("<img src=x onerror=alert(1)>")
    page.wait_for_load_state("networkidle")
    assert page.locator("main script").count() == 0
    assert page.locator("img").count() == 0
    assert dialogs == []


def test_the_desk_sees_the_applicant_masked_and_nobody_the_id_number(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    seed_life(directory)
    for person, applicant in ((DESK, "Nguyễn V. An"), (HANDLER, APPLICANT), (LEADER, APPLICANT)):
        page.context.clear_cookies()
        sign_in(page, directory, person)
        page.goto(f"{directory.url}/dossiers/{CODE}")
        expect(page.locator("[data-field=applicant]")).to_have_text(applicant)
        content = page.content()
        assert ID_NUMBER not in content and ID_NUMBER[-3:] + "<" not in content
        if person is DESK:
            assert APPLICANT not in content


# ---- the official forms: form 06 on the page and as .docx, form 04 for an overdue dossier ----

OVERDUE_CODE = f"{UNIT}-250305-0007"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def vn(month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2025, month, day, hour, minute, second, tzinfo=VN_TZ)


def seed_overdue(live: LiveServer) -> None:
    """A dossier received on Wednesday 5/3/2025, due Monday 10/3 at 17:00, handed over three
    times (before, at and after the step's allowance: 3 h 30 over a weekend), still open with
    the handler: overdue."""
    steps = [
        ("p1", DESK.account, "Bộ phận Một cửa", vn(3, 5, 8), vn(3, 5, 10)),
        ("p2", HANDLER.account, "Phòng Đăng ký", vn(3, 5, 9, 30), vn(3, 6, 14)),
        ("p3", "chuyenvien.thamdinh", "Phòng Đăng ký", vn(3, 6, 14, 0, 40), vn(3, 7, 16)),
        ("p4", HANDLER.account, "Phòng Đăng ký", vn(3, 10, 9, 30), vn(3, 10, 16)),
    ]
    fields: dict[str, Any] = {"ChuHoSo": APPLICANT, "SoGiayToChuHoSo": ID_NUMBER}
    fields |= {"NgayTiepNhan": format_thoi_diem(vn(3, 5, 8))}
    fields |= {"NgayHenTra": format_thoi_diem(vn(3, 10, 17))}
    envelopes = [snapshot(OVERDUE_CODE, event_id="o-s1", emitted_at=vn(3, 10, 9, 30), **fields)]
    for event_id, officer, department, start, allowed in steps:
        step = progress(
            OVERDUE_CODE, event_id=event_id, emitted_at=start, step_at=start, officer=officer
        )
        step["data"] |= {
            "PhongBanXuLy": department,
            "NgayBatDau": format_thoi_diem(start),
            "NgayKetThucTheoQuyDinh": format_thoi_diem(allowed),
        }
        envelopes.append(step)
    events = [event for event in map(parse_envelope, envelopes) if isinstance(event, DossierEvent)]

    async def work(connection: AsyncConnection) -> None:
        await store_events(connection, events, now=live.clock())

    live.run(work)
    judge(live)


def download(page: Page, link: Locator) -> Path:
    with page.expect_download() as started:
        link.click()
    done = started.value
    assert done.failure() is None
    return done.path()


def test_a_handler_signs_the_apology_instead_of_writing_it(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    seed_overdue(directory)
    sign_in(page, directory, HANDLER)
    page.goto(f"{directory.url}/dossiers/{OVERDUE_CODE}")
    expect(
        page.locator("table.findings").get_by_text("Quá hạn, chưa có văn bản xin lỗi")
    ).to_be_visible()

    # Form 06 on the page: one row per hand-off, the result of the step each one ended.
    sheet = page.locator("[data-section=control-sheet]")
    expect(sheet.get_by_role("heading", level=2)).to_contain_text("Phiếu kiểm soát quá trình")
    rows = sheet.locator("tbody tr")
    expect(rows).to_have_count(5)
    assert [rows.nth(i).get_attribute("data-result") for i in range(5)] == [
        "none",
        "early",
        "on_time",
        "late",
        "late",  # still with the handler, long past the step's allowance
    ]
    expect(rows.nth(1)).to_contain_text(f"Giao: {DESK.full_name} ({DESK.account}), Bộ phận Một cửa")
    expect(rows.nth(1)).to_contain_text(f"Nhận: {HANDLER.full_name} ({HANDLER.account})")
    expect(rows.nth(3).locator("td.result")).to_have_text("Quá hạn3 giờ 30 phút làm việc")
    expect(rows.nth(4)).to_contain_text("(đang giữ hồ sơ)")

    # …and as the .docx officers know, with the same rows.
    sheet_link = sheet.get_by_role("link", name="Tải phiếu kiểm soát (.docx)")
    control = docx.Document(str(download(page, sheet_link)))
    written = [[cell.text for cell in row.cells] for row in control.tables[1].rows]
    assert written[0][2] == "Kết quả giải quyết hồ sơ (trước hạn/đúng hạn/quá hạn)"
    assert [row[2] for row in written[1:5]] == [
        "—",
        "Trước hạn",
        "Đúng hạn",
        "Quá hạn\n3 giờ 30 phút làm việc",
    ]
    assert written[4][0] == (
        "4. Giao: chuyenvien.thamdinh, Phòng Đăng ký\n"
        f"Nhận: {HANDLER.full_name} ({HANDLER.account}), Phòng Đăng ký"
    )
    assert f"Mã hồ sơ: {OVERDUE_CODE}" in [p.text for p in control.paragraphs]

    # Form 04, pre-filled: the handler writes the reason and has it signed.
    before = directory.clock()
    notice = page.locator("[data-apology]")
    expect(notice).to_contain_text("Hồ sơ đã quá hạn trả kết quả")
    apology = docx.Document(
        str(download(page, notice.get_by_role("link", name=re.compile("dự thảo văn bản xin lỗi"))))
    )
    after = directory.clock()
    text = "\n".join(p.text for p in apology.paragraphs)
    assert "VĂN BẢN XIN LỖI VÀ ĐỀ NGHỊ GIA HẠN THỜI GIAN GIẢI QUYẾT HỒ SƠ" in text
    assert f"Kính gửi: {APPLICANT}" in text
    assert f"mã hồ sơ {OVERDUE_CODE}" in text and PROCEDURE in text
    assert "đã hẹn là: 17 giờ 00 phút, ngày 10 tháng 3 năm 2025." in text
    assert "Lý do:\t" in text.split("\n")
    proposed = {
        date_words(proposed_return(moment, WorkingCalendar())) for moment in (before, after)
    }
    assert any(f"sẽ trả kết quả giải quyết hồ sơ vào {day}." in text for day in proposed)
    assert ID_NUMBER not in text

    answer = page.request.get(f"{directory.url}{apology_draft_path(OVERDUE_CODE)}")
    assert answer.status == 200 and answer.headers["content-type"] == DOCX
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="xin-loi-{OVERDUE_CODE}.docx"'
    )


def test_the_desk_gets_the_control_sheet_but_not_the_apology_and_other_units_neither(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    seed_overdue(directory)
    for person, expected in ((OTHER_HANDLER, (403, 403)), (DESK, (200, 403))):
        page.context.clear_cookies()
        sign_in(page, directory, person)
        sheet, apology = (
            page.request.get(f"{directory.url}/dossiers/{OVERDUE_CODE}/{name}")
            for name in ("phieu-kiem-soat.docx", "xin-loi.docx")
        )
        assert (sheet.status, apology.status) == expected, person
        assert APPLICANT.encode() not in apology.body()
    assert sheet.headers["content-type"] == DOCX
    page.goto(f"{directory.url}/dossiers/{OVERDUE_CODE}")
    expect(page.locator("[data-section=control-sheet] tbody tr")).to_have_count(5)
    expect(page.locator("[data-apology]")).to_have_count(0)


def test_a_dossier_on_time_needs_no_apology(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    seed_life(directory)  # due in eight days
    sign_in(page, directory, HANDLER)
    page.goto(f"{directory.url}/dossiers/{CODE}")
    expect(page.locator("[data-section=control-sheet] tbody tr")).to_have_count(2)
    expect(page.locator("[data-section=control-sheet] tbody tr").last).to_contain_text("Đang xử lý")
    expect(page.locator("[data-apology]")).to_have_count(0)
    answer = page.goto(f"{directory.url}{apology_draft_path(CODE)}")
    assert answer is not None and answer.status == 409
    expect(page.get_by_role("heading", level=1)).to_have_text("Không thực hiện được")
    expect(page.get_by_role("alert")).to_contain_text("không quá hạn trả kết quả")
    unknown = page.request.get(f"{directory.url}{apology_draft_path(f'{UNIT}-000000-9999')}")
    assert unknown.status == 404


def test_a_late_dossier_says_whose_step_overran(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    seed_overdue(directory)
    sign_in(page, directory, LEADER)
    page.goto(f"{directory.url}/dossiers/{OVERDUE_CODE}")
    section = page.locator("[data-section=lateness]")
    expect(section.get_by_role("heading", level=2)).to_have_text("Trễ hạn: thời gian chậm ở đâu")
    # The appraiser held it from Friday 16:00 (the step's allowance) to Monday 9:30: 1 h 30
    # on Friday and 2 h on Monday; the handler holds it still, past Monday 16:00.
    appraiser = section.locator("tbody tr[data-officer='chuyenvien.thamdinh']")
    expect(appraiser.locator("td.result")).to_have_text("3 giờ 30 phút làm việc")
    holder = section.locator(f"tbody tr[data-officer='{HANDLER.account}']")
    expect(holder).to_contain_text(HANDLER.full_name)
    expect(section.locator(f"tbody tr[data-officer='{DESK.account}']")).to_have_count(0)


def test_a_rewritten_due_date_shows_what_it_was_and_what_it_became(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    code = f"{UNIT}-250305-0099"
    first: dict[str, Any] = {"NgayTiepNhan": format_thoi_diem(vn(3, 5, 8))}
    envelopes = [
        snapshot(
            code,
            event_id="r-s1",
            emitted_at=vn(3, 5, 8),
            **first,
            NgayHenTra=format_thoi_diem(vn(3, 10, 17)),
        ),
        snapshot(
            code,
            event_id="r-s2",
            emitted_at=vn(3, 11, 9),
            **first,
            NgayHenTra=format_thoi_diem(vn(3, 14, 17)),
        ),
    ]
    events = [event for event in map(parse_envelope, envelopes) if isinstance(event, DossierEvent)]

    async def work(connection: AsyncConnection) -> None:
        await store_events(connection, events, now=directory.clock())

    directory.run(work)
    judge(directory)
    sign_in(page, directory, LEADER)
    page.goto(f"{directory.url}/dossiers/{code}")
    moved = page.locator("table.findings tr[data-rewrite=NgayHenTra]")
    expect(moved).to_contain_text("Ngày hẹn trả kết quả đã bị sửa")
    expect(moved.locator("del")).to_have_text("10/03/2025 17:00")
    expect(moved.locator("ins")).to_have_text("14/03/2025 17:00")
    expect(moved).to_contain_text("hệ thống báo lúc 05/03/2025 08:00")
