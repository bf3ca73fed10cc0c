"""``/dossiers/{code}``: a dossier's whole story, read in a real browser (contract §6)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from playwright.sync_api import Dialog, Page, expect
from sqlalchemy.ext.asyncio import AsyncConnection

from services.alerts.config import AlertsSettings
from services.alerts.planner import AlertPlanner
from services.ingest.service import store_events
from services.reconciler.config import ReconcilerSettings
from services.reconciler.reports import service as reports_service
from services.reconciler.reports.schemas import FieldReportCreate
from services.reconciler.worker import Reconciler
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
