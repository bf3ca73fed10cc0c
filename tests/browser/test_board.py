"""The leaders' weekly review, in a real browser (contract §6): its figures are the API's.

Last week (ISO, Vietnam time) is seeded through ingest's ``store_events`` and the desk's
``store_report``, then judged by the real reconciler. For UNIT, received Monday..Sunday:

| dossier | status | due | on time | online | digitised |
|---|---|---|---|---|---|
| D1 | 9, finished Tuesday | Thursday 17:00 | yes | yes | yes |
| D2 `<script>` name | 4 (open) | Wednesday 17:00 | no (measured at the week's end) | no | yes |
| D3 | 10, finished Friday | Thursday 17:00 | no | yes | no |
| D4 | 4 | none | — (without due date) | no | yes |
| D5 | 4 | in 60 days | yes | yes | yes |
| D7 `=HYPERLINK` name | 4, the desk returned it Thursday | in 60 days | yes | no | yes |

So: received 6; on time 3/5 = 60 % (below 98: red); online 3/6 = 50 % (met: green);
digitised 5/6 = 83.33 % (met); in system 1/2 = 50 % (the desk also returned a dossier the
system never sent). OTHER_UNIT's D6 is outside the leader's subtree; D8, received five weeks
earlier and silent since, is stalled and shows in the 12-week trend only.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import openpyxl  # type: ignore[import-untyped]
import pytest
from playwright.sync_api import Download, Locator, Page, expect
from sqlalchemy.ext.asyncio import AsyncConnection

from services.ingest.service import store_events
from services.reconciler.config import ReconcilerSettings
from services.reconciler.directory.schemas import OfficerUpdate
from services.reconciler.directory.service import put_officer
from services.reconciler.kpis.formulas import IsoWeek
from services.reconciler.reports.schemas import FieldReportCreate
from services.reconciler.reports.service import store_report
from services.reconciler.worker import Reconciler
from shared.clock import VN_TZ
from shared.db import create_engine
from shared.dvcqg import format_thoi_diem
from shared.events import DossierEvent, parse_envelope
from tests.browser.conftest import (
    ADMIN_KEY,
    DESK,
    HANDLER,
    LEADER,
    OTHER_UNIT,
    PROVINCE,
    UNIT,
    LiveServer,
    Person,
    Watched,
    screenshot,
    sign_in,
)
from tests.factories import dossier_code, progress, snapshot
from tests.support import postgres

PROVINCE_LEADER = Person("nguyenvantinh.ubnd", "Nguyễn Văn Tỉnh", "leader", PROVINCE)
HOSTILE_NAME = "<script>alert('x')</script> Cấp giấy chứng nhận"
FORMULA_NAME = '=HYPERLINK("http://example.invalid","bấm vào")'
UNKNOWN = dossier_code(999)
D = {n: dossier_code(n) for n in range(1, 9)}
D[6] = dossier_code(6, unit=OTHER_UNIT)
KPI_COLUMNS = ("on_time_pct", "online_pct", "digitised_pct", "in_system_pct")


def last_week(live: LiveServer) -> IsoWeek:
    return IsoWeek.containing(live.clock().astimezone(VN_TZ).date()).shifted(-1)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=VN_TZ)


def dossier(
    number: int, received: datetime, due: datetime | None, *, status: int = 4, **fields: Any
) -> DossierEvent:
    """A snapshot sent five minutes after its reception (``due=None``: no NgayHenTra)."""
    envelope = snapshot(
        D[number],
        event_id=f"snap-{number}",
        emitted_at=received + timedelta(minutes=5),
        status=status,
        NgayTiepNhan=format_thoi_diem(received),
        **fields,
    )
    if due is None:
        del envelope["data"]["NgayHenTra"]
    else:
        envelope["data"]["NgayHenTra"] = format_thoi_diem(due)
    event = parse_envelope(envelope)
    assert isinstance(event, DossierEvent)
    return event


def seed_last_week(live: LiveServer) -> IsoWeek:
    """The table of the module's docstring, judged by the reconciler."""
    week = last_week(live)
    mon = week.monday
    tue, wed, thu, fri = (mon + timedelta(days=n) for n in range(1, 5))
    far = at(mon + timedelta(days=60), 17)
    events = [
        dossier(
            1, at(mon, 8), at(thu, 17), status=9, KenhThucHien=2,
            NgayKetThucXuLy=format_thoi_diem(at(tue, 10)),
        ),
        dossier(2, at(mon, 9), at(wed, 17), TenTTHC=HOSTILE_NAME),
        dossier(
            3, at(tue, 8), at(thu, 17), status=10, KenhThucHien=2, HoSoCoThanhPhanSoHoa=0,
            NgayKetThucXuLy=format_thoi_diem(at(fri, 10)), NgayTra=format_thoi_diem(at(fri, 15)),
        ),
        dossier(4, at(tue, 9), None),
        dossier(5, at(wed, 8), far, KenhThucHien=2),
        dossier(6, at(mon, 10), at(thu, 17), DonViXuLy=OTHER_UNIT),
        dossier(7, at(wed, 9), far, TenTTHC=FORMULA_NAME),
        dossier(8, at(mon - timedelta(weeks=5), 8), at(mon + timedelta(days=100), 17)),
    ]  # fmt: skip
    reports = [
        FieldReportCreate(
            report_id=f"desk-{code}", dossier_code=code, kind="returned",
            occurred_at=at(thu, 10), officer=DESK.account, unit_code=UNIT,
        )
        for code in (D[7], UNKNOWN)
    ]  # fmt: skip

    async def work(connection: AsyncConnection) -> None:
        now = live.clock()
        result = await store_events(connection, events, now=now)
        assert result.count("stored") == len(events), result.outcomes
        for report in reports:
            await store_report(connection, report, channel="api", now=now)
        officer = OfficerUpdate(
            full_name=PROVINCE_LEADER.full_name,
            unit_code=PROVINCE,
            role="leader",
            email=f"{PROVINCE_LEADER.account}@example.gov.vn",
        )
        await put_officer(connection, account=PROVINCE_LEADER.account, officer_in=officer, now=now)

    live.run(work)
    judge(live)
    return week


def judge(live: LiveServer) -> None:
    """Run the real reconciler over everything due, as its worker would."""

    async def main() -> None:
        engine = create_engine(live.database_url)
        try:
            settings = ReconcilerSettings(database_url=live.database_url, _env_file=None)
            await Reconciler(settings, engine, live.clock).drain()
        finally:
            await engine.dispose()

    postgres.run_coro_blocking(main)


def api_kpis(live: LiveServer, unit: str, week: IsoWeek) -> dict[str, dict[str, Any]]:
    """``GET /api/v1/kpis`` for the ISO week's Monday..Sunday, items by unit."""
    answer = httpx.get(
        f"{live.url}/api/v1/kpis",
        params={"unit": unit, "from": week.monday.isoformat(), "to": week.sunday.isoformat()},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert answer.status_code == 200, answer.text
    return {item["unit_code"]: item for item in answer.json()["items"]}


def number(text: str | None) -> float | None:
    return None if text in (None, "") else float(text)


def values(row: Locator) -> list[str]:
    found: list[str] = row.locator("td").evaluate_all("cells => cells.map(c => c.dataset.value)")
    return found


def unit_rows(page: Page) -> dict[str, list[str]]:
    rows = page.locator("#table-units tbody tr")
    return {cells[0]: cells for cells in (values(rows.nth(i)) for i in range(rows.count()))}


def assert_row_is_the_api_item(cells: list[str], item: dict[str, Any]) -> None:
    """Columns: code, name, received, the four percentages, without due date, discrepancies."""
    assert cells[0] == item["unit_code"]
    assert int(cells[2]) == item["received"]
    assert [number(cell) for cell in cells[3:7]] == [item[key] for key in KPI_COLUMNS]
    assert int(cells[7]) == item["without_due_date"]
    assert int(cells[8]) == sum(item["active_discrepancies"].values())


def opened(download: Download, folder: Path) -> Any:
    """The downloaded workbook's sheet, opened with openpyxl as a leader's Excel would."""
    path = folder / download.suggested_filename
    download.save_as(path)
    return openpyxl.load_workbook(path).active


def card(page: Page, key: str) -> Locator:
    return page.locator(f"[data-kpi={key}] .figure")


def test_a_leader_opens_the_board_and_its_figures_equal_the_api(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    week = seed_last_week(directory)
    sign_in(page, directory, LEADER)
    expect(page).to_have_url(f"{directory.url}/board")  # a leader's home page
    this_week = IsoWeek.containing(directory.clock().astimezone(VN_TZ).date())
    expect(page.get_by_label("Tuần", exact=True)).to_have_value(str(this_week))

    page.get_by_role("link", name="← Tuần trước").click()
    expect(page).to_have_url(f"{directory.url}/board?week={week}")
    item = api_kpis(directory, UNIT, week)[UNIT]
    assert item["received"] == 6
    assert [item[key] for key in KPI_COLUMNS] == [60.0, 50.0, 83.33, 50.0]

    # The cards: a leader of a unit without sub-units sees that unit's item, with the counts.
    for key in KPI_COLUMNS:
        assert number(card(page, key).get_attribute("data-value")) == item[key], key
    expect(card(page, "on_time_pct")).to_have_text("60,0% (3/5)")
    expect(card(page, "on_time_pct")).to_have_class("figure bad")
    expect(card(page, "online_pct")).to_have_text("50,0% (3/6)")
    expect(card(page, "online_pct")).to_have_class("figure good")
    expect(card(page, "digitised_pct")).to_have_text("83,3% (5/6)")
    expect(card(page, "in_system_pct")).to_have_text("50,0% (1/2)")
    expect(card(page, "in_system_pct")).to_have_class("figure bad")

    # The per-unit table holds the API's item, and nothing of the other unit.
    rows = unit_rows(page)
    assert list(rows) == [UNIT]
    assert_row_is_the_api_item(rows[UNIT], item)

    # The week is the last row of the trend; five weeks earlier D8 was received.
    trend = page.locator("#table-trend tbody tr")
    assert number(values(trend.nth(11))[2]) == 6
    assert [number(v) for v in values(trend.nth(11))[3:7]] == [item[k] for k in KPI_COLUMNS]
    earlier = api_kpis(directory, UNIT, week.shifted(-5))[UNIT]
    assert values(trend.nth(6))[0] == str(week.shifted(-5))
    assert number(values(trend.nth(6))[2]) == earlier["received"] == 1
    assert [number(v) for v in values(trend.nth(6))[3:7]] == [earlier[k] for k in KPI_COLUMNS]

    # The lists, each dossier linked to its story; hostile names stay text.
    late = page.locator("#table-late")
    expect(late.get_by_role("link", name=D[2])).to_have_attribute("href", f"/dossiers/{D[2]}")
    expect(late).to_contain_text(HOSTILE_NAME)
    returned = page.locator("#table-returned_but_open")
    expect(returned.get_by_role("link", name=D[7])).to_be_visible()
    expect(page.locator("#table-stalled").get_by_role("link", name=D[8])).to_be_visible()
    expect(page.locator("main")).not_to_contain_text(D[6])


def test_the_province_leader_sees_every_unit_and_their_total(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    week = seed_last_week(directory)
    sign_in(page, directory, PROVINCE_LEADER)
    page.goto(f"{directory.url}/board?week={week}")
    items = api_kpis(directory, PROVINCE, week)
    rows = unit_rows(page)
    assert sorted(rows) == sorted(items) == sorted([PROVINCE, UNIT, OTHER_UNIT])
    for code, item in items.items():
        assert_row_is_the_api_item(rows[code], item)
    # The cards total the subtree: UNIT's 6 dossiers and OTHER_UNIT's D6 (open, past due).
    assert int(page.locator("[data-total=received]").inner_text()) == 7
    expect(card(page, "on_time_pct")).to_have_text("50,0% (3/6)")
    expect(page.locator("#table-units tfoot")).to_contain_text("7")

    # Sorting by a column, with the keyboard: OTHER_UNIT (1 received) before UNIT (6).
    received = page.locator("#table-units th").filter(has_text="Tiếp nhận").get_by_role("button")
    received.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#table-units th").filter(has_text="Tiếp nhận")).to_have_attribute(
        "aria-sort", "ascending"
    )
    assert [values(row)[0] for row in page.locator("#table-units tbody tr").all()] == [
        PROVINCE,
        OTHER_UNIT,
        UNIT,
    ]
    page.keyboard.press("Enter")
    assert values(page.locator("#table-units tbody tr").first)[0] == UNIT

    # A unit of the subtree alone, from its row.
    page.locator("#table-units").get_by_role("link", name=OTHER_UNIT).click()
    assert list(unit_rows(page)) == [OTHER_UNIT]
    expect(page.locator("#table-late").get_by_role("link", name=D[6])).to_be_visible()


def test_the_excel_export_opens_with_openpyxl_and_holds_the_same_rows(
    page: Page, directory: LiveServer, watched: Watched, tmp_path: Path
) -> None:
    week = seed_last_week(directory)
    sign_in(page, directory, LEADER)
    page.goto(f"{directory.url}/board?week={week}")

    section = page.locator("section[aria-labelledby=units-title]")
    with page.expect_download() as info:
        section.get_by_role("link", name="Tải Excel (.xlsx)").click()
    download = info.value
    assert download.suggested_filename == f"giao-ban-{week}-{UNIT}-don-vi.xlsx"
    sheet = opened(download, tmp_path)
    lines = list(sheet.iter_rows(values_only=True))
    assert lines[0] == (
        "Mã đơn vị", "Tên đơn vị", "Tiếp nhận", "Đúng hạn", "Trực tuyến", "Số hóa",
        "Có trên HT", "Không hạn", "Sai lệch đang mở",
    )  # fmt: skip
    on_page = unit_rows(page)[UNIT]
    exported = lines[1]
    assert exported[0] == UNIT and exported[2] == int(on_page[2])
    assert [round(value * 100, 2) for value in exported[3:7]] == [
        number(cell) for cell in on_page[3:7]
    ]
    assert sheet.cell(row=2, column=4).number_format == "0.00%"
    assert lines[-1][0] == "Cộng"  # the total, after the units

    with page.expect_download() as info:
        page.locator("section[aria-labelledby=trend-title]").get_by_role("link").click()
    trend = list(opened(info.value, tmp_path).iter_rows(values_only=True))
    assert [line[0] for line in trend[1:]] == [str(week.shifted(n)) for n in range(-11, 1)]

    with page.expect_download() as info:
        page.locator("section[aria-labelledby=returned_but_open-title]").get_by_role(
            "link", name="Tải Excel (.xlsx)"
        ).click()
    returned = opened(info.value, tmp_path)
    codes = [row[0] for row in returned.iter_rows(min_row=2, values_only=True)]
    assert codes == [
        values(row)[0] for row in page.locator("#table-returned_but_open tbody tr").all()
    ]
    assert codes == [D[7]]
    assert returned.cell(row=2, column=2).value == FORMULA_NAME
    assert returned.cell(row=2, column=2).data_type == "s"  # text, never a formula

    answer = page.request.get(f"{directory.url}/board/export?week={week}&table=late")
    assert answer.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert answer.headers["content-disposition"].startswith("attachment; filename=")


def test_the_chart_is_drawn_and_its_table_holds_twelve_weeks(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    week = seed_last_week(directory)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if "Content Security" in m.text else None)
    page.on("response", lambda r: problems.append(r.url) if r.status >= 400 else None)
    sign_in(page, directory, LEADER)
    page.goto(f"{directory.url}/board?week={week}")
    rows = page.locator("#table-trend tbody tr")
    expect(rows).to_have_count(12)
    assert values(rows.first)[0] == str(week.shifted(-11))
    drawn = page.evaluate(
        """() => {
            const canvas = document.getElementById("trend-chart");
            const chart = window.Chart && window.Chart.getChart(canvas);
            const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
            return {
                chart: Boolean(chart),
                lines: chart ? chart.data.datasets.length : 0,
                painted: pixels.data.some((value) => value !== 0),
            };
        }"""
    )
    assert drawn == {"chart": True, "lines": 4, "painted": True}
    assert problems == []  # no script or style refused by the CSP, no request failed


def test_a_handler_opening_the_board_gets_403(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    sign_in(page, directory, HANDLER)
    for path in ("/board", "/board/export?table=units"):
        answer = page.goto(f"{directory.url}{path}")
        assert answer is not None and answer.status == 403, path
    expect(page.get_by_role("alert")).to_contain_text("không dành cho vai trò")


def test_a_leader_cannot_open_a_unit_outside_their_subtree(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    sign_in(page, directory, LEADER)
    for path in (f"/board?unit={OTHER_UNIT}", f"/board/export?unit={PROVINCE}&table=late"):
        answer = page.goto(f"{directory.url}{path}")
        assert answer is not None and answer.status == 403, path
    answer = page.goto(f"{directory.url}/board?week=2026-W60")
    assert answer is not None and answer.status == 422
    expect(page.get_by_role("alert")).to_contain_text("không hợp lệ")


# This month's forecast ---------------------------------------------------------------------------


def as_event(envelope: dict[str, Any]) -> DossierEvent:
    event = parse_envelope(envelope)
    assert isinstance(event, DossierEvent)
    return event


def sent(
    code: str, received: datetime, due: datetime, *, status: int = 4, **fields: Any
) -> DossierEvent:
    """A snapshot of ``code`` sent when it was received."""
    return as_event(
        snapshot(
            code, event_id=f"snap-{code}", emitted_at=received, status=status,
            NgayTiepNhan=format_thoi_diem(received), NgayHenTra=format_thoi_diem(due), **fields,
        )
    )  # fmt: skip


def seed_this_month(live: LiveServer) -> dict[str, str]:
    """UNIT's month so far: 49 dossiers finished on time and three still open, due before the
    month ends (U1, U2, U3, in that order; held by the handler, an officer the directory does
    not know, and the desk officer). 52/52 on time today; U1 late leaves 51/52 = 98.08 %, U1 and
    U2 late 50/52 = 96.15 %: those two decide. All three late: 49/52 = 94.23 %. OTHER_UNIT's
    open dossier is outside the leader's subtree."""
    now = live.clock()
    month_start = datetime.combine(now.astimezone(VN_TZ).date().replace(day=1), time(0), VN_TZ)
    month_end = datetime.combine(
        (month_start + timedelta(days=32)).date().replace(day=1), time(0), VN_TZ
    )
    if now - month_start < timedelta(minutes=2) or month_end - now < timedelta(hours=1):
        pytest.skip("too close to the month's start or end for a forecast within it")
    received = month_start + (now - month_start) / 2
    finished = format_thoi_diem(received + (now - received) / 2)
    codes = {f"U{n}": dossier_code(40 + n) for n in (1, 2, 3)}
    codes["other"] = dossier_code(44, unit=OTHER_UNIT)
    later = month_end + timedelta(days=9)
    events = [
        sent(dossier_code(n), received, later, status=9, NgayKetThucXuLy=finished)
        for n in range(100, 149)
    ]
    events += [sent(codes[f"U{n}"], received, now + (month_end - now) * n / 4) for n in (1, 2, 3)]
    events.append(sent(codes["other"], received, now + (month_end - now) / 2, DonViXuLy=OTHER_UNIT))
    holders = {1: HANDLER.account, 2: "nguoingoai.khac", 3: DESK.account}
    events += [
        as_event(progress(codes[f"U{n}"], event_id=f"step-{n}", emitted_at=received,
                          step_at=received, officer=account))
        for n, account in holders.items()
    ]  # fmt: skip

    async def work(connection: AsyncConnection) -> None:
        result = await store_events(connection, events, now=live.clock())
        assert result.count("stored") == len(events), result.outcomes

    live.run(work)
    return codes


def test_the_board_forecasts_this_month_with_the_dossiers_that_decide_it(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    codes = seed_this_month(directory)
    sign_in(page, directory, LEADER)
    answer = httpx.get(
        f"{directory.url}/api/v1/kpis",
        params={"unit": UNIT},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert answer.status_code == 200, answer.text
    (item,) = answer.json()["items"]
    forecast = item["forecast"]
    assert (item["on_time_pct"], forecast["on_time_pct_best"]) == (100.0, 100.0)
    assert forecast["on_time_pct_worst"] == 94.23
    assert [each["dossier_code"] for each in forecast["deciding"]] == [codes["U1"], codes["U2"]]
    assert [each["responsible"] for each in forecast["deciding"]] == [
        HANDLER.account,
        "nguoingoai.khac",
    ]

    section = page.locator("section[aria-labelledby=forecast-title]")
    expect(section.get_by_role("heading", name="Dự báo tháng này")).to_be_visible()
    rows = section.locator("#table-forecast tbody tr")
    expect(rows).to_have_count(1)  # the leader's unit; OTHER_UNIT is outside the subtree
    row = rows.first
    expect(row).to_have_attribute("data-unit", UNIT)
    expect(row).to_have_attribute("data-outlook", "at_risk")
    shares = [row.locator(f"td[data-key={key}]") for key in ("on_time_pct", "best", "worst")]
    for cell, value in zip(shares, (100.0, 100.0, 94.23), strict=True):
        assert number(cell.get_attribute("data-value")) == value
    expect(shares[0]).to_have_text("100,0%")
    expect(shares[2]).to_have_text("94,2%")
    expect(shares[2]).to_have_class("num bad")
    expect(row.locator("td[data-key=undecided]")).to_have_text("3")
    expect(row.locator(".deciding p")).to_have_text("Chỉ cần 2 hồ sơ trễ hạn là dưới 98%:")

    # The two that decide, due first first, each linked to its story with its holder.
    listed = row.locator(".deciding li")
    expect(listed).to_have_count(2)
    assert listed.evaluate_all("items => items.map(i => i.dataset.dossier)") == [
        codes["U1"],
        codes["U2"],
    ]
    expect(listed.nth(0).locator(".holder")).to_have_text(HANDLER.full_name)
    expect(listed.nth(1).locator(".holder")).to_have_text("nguoingoai.khac")  # not in directory
    expect(section).not_to_contain_text(codes["U3"])
    expect(section).not_to_contain_text(codes["other"])
    link = listed.nth(0).get_by_role("link", name=codes["U1"])
    expect(link).to_have_attribute("href", f"/dossiers/{codes['U1']}")
    link.click()
    expect(page).to_have_url(f"{directory.url}/dossiers/{codes['U1']}")


# Rewritten dossiers and the late-dossier accountability (§7) -----------------------------------

# A week long past, without public holidays, so that the working hours are worked out by hand:
# Monday 28/10/2024 .. Sunday 03/11/2024, measured at its end (Monday 04/11 00:00).
W44 = IsoWeek(2024, 44)
REWRITTEN, LATE_1, LATE_2 = (dossier_code(n) for n in (70, 71, 72))


def w44(weekday: int, hour: int, minute: int = 0) -> datetime:
    """A moment of 2024-W44 (weekday 0 = Monday), Vietnam time."""
    return at(W44.monday + timedelta(days=weekday), hour, minute)


def step_of(code: str, number: int, officer: str, start: datetime, allowed: datetime | None) -> Any:
    envelope = progress(
        code, event_id=f"step-{code}-{number}", emitted_at=start, step_at=start, officer=officer
    )
    if allowed is not None:
        envelope["data"]["NgayKetThucTheoQuyDinh"] = format_thoi_diem(allowed)
    return as_event(envelope)


def seed_week_44(live: LiveServer) -> None:
    """UNIT's dossiers received in W44, judged by the reconciler:

    - REWRITTEN, promised Tuesday 17:00; on Wednesday 09:00 a snapshot says it finished then and
      moves the promised date to Friday 17:00, with no supplement request or apology: on time on
      paper (the rewrite hid it), found as DATES_REWRITTEN.
    - LATE_1 (Đất đai), due Tuesday 17:00, finished Wednesday 15:00. The handler's step (from
      Monday 08:00) was allowed until Tuesday 10:00: 7 h over (Tue 10–11:30, 13:30–17, Wed
      07–09); the leader's (from Wednesday 09:00) until Wednesday 10:00: 3 h (10–11:30,
      13:30–15). No apology.
    - LATE_2 (Hộ tịch), promised Wednesday 17:00; the apology, made Thursday 08:00 (late),
      moves it to Friday 10:00; still open at the week's end. No step had an allowance: the
      handler, holding it at that date, carries Friday 10–11:30 and 13:30–17 = 5 h.

    So UNIT: 2 late dossiers, 15 h; the handler 12 h over both, the leader 3 h."""
    fmt = format_thoi_diem
    events = [
        as_event(snapshot(
            REWRITTEN, event_id="rewritten-1", emitted_at=w44(0, 8, 5), TenLinhVuc="Đất đai",
            NgayTiepNhan=fmt(w44(0, 8)), NgayHenTra=fmt(w44(1, 17)),
        )),
        as_event(snapshot(
            REWRITTEN, event_id="rewritten-2", emitted_at=w44(2, 9), status=9,
            TenLinhVuc="Đất đai", NgayTiepNhan=fmt(w44(0, 8)), NgayHenTra=fmt(w44(4, 17)),
            NgayKetThucXuLy=fmt(w44(2, 9)),
        )),
        as_event(snapshot(
            LATE_1, event_id="late-1", emitted_at=w44(2, 15, 5), status=9, TenLinhVuc="Đất đai",
            NgayTiepNhan=fmt(w44(0, 8)), NgayHenTra=fmt(w44(1, 17)),
            NgayKetThucXuLy=fmt(w44(2, 15)),
        )),
        step_of(LATE_1, 1, HANDLER.account, w44(0, 8), w44(1, 10)),
        step_of(LATE_1, 2, LEADER.account, w44(2, 9), w44(2, 10)),
        as_event(snapshot(
            LATE_2, event_id="late-2", emitted_at=w44(3, 8, 5), TenLinhVuc="Hộ tịch",
            NgayTiepNhan=fmt(w44(1, 8)), NgayHenTra=fmt(w44(2, 17)),
            DanhSachXinLoi=[{
                "NgayYeuCau": fmt(w44(3, 8)), "NgayHenTraTruoc": fmt(w44(2, 17)),
                "NgayHenTraMoi": fmt(w44(4, 10)), "LyDo": "Chờ ý kiến phối hợp của cơ quan thuế",
            }],
        )),
        step_of(LATE_2, 1, HANDLER.account, w44(1, 8), None),
    ]  # fmt: skip

    async def work(connection: AsyncConnection) -> None:
        result = await store_events(connection, events, now=live.clock())
        assert result.count("stored") == len(events), result.outcomes

    live.run(work)
    judge(live)


def rows_of(page: Page, table: str) -> list[list[str]]:
    return [values(row) for row in page.locator(f"#table-{table} tbody tr").all()]


def test_a_leader_sees_who_held_the_weeks_late_dossiers_and_the_rewritten_one(
    page: Page, directory: LiveServer, watched: Watched
) -> None:
    seed_week_44(directory)
    sign_in(page, directory, LEADER)
    page.goto(f"{directory.url}/board?week={W44}")
    expect(card(page, "on_time_pct")).to_have_text("33,3% (1/3)")  # REWRITTEN on time on paper

    # The rewritten dossier, with the date that moved from what to what.
    rewritten = page.locator("#table-rewritten")
    expect(rewritten.get_by_role("link", name=REWRITTEN)).to_have_attribute(
        "href", f"/dossiers/{REWRITTEN}"
    )
    (row,) = rewritten.locator("tbody tr").all()
    expect(row).to_contain_text("Ngày hẹn trả kết quả")
    expect(row.locator("td").nth(-2)).to_have_text("29/10/2024 17:00")
    expect(row.locator("td").nth(-1)).to_have_text("01/11/2024 17:00")
    expect(page.locator("#rewritten-title")).to_contain_text("(1)")

    # Units, officers and fields by overrun, worked out by hand; the late dossiers are those
    # the on-time card counts late (3 − 1).
    section = page.locator("section[aria-labelledby=late_units-title]")
    expect(section).to_contain_text("Hồ sơ tiếp nhận trong tuần")
    assert rows_of(page, "late_units") == [
        [UNIT, "Chi nhánh VPĐKĐĐ Tuy Phong", "2", "15.0", "1", "1"]
    ]
    expect(page.locator("#table-late_units tbody td").nth(3)).to_have_text("15")
    assert rows_of(page, "late_officers") == [
        [HANDLER.full_name, HANDLER.account, "2", "12.0", "1", "1"],
        [LEADER.full_name, LEADER.account, "1", "3.0", "1", "0"],
    ]
    assert rows_of(page, "late_fields") == [
        ["Đất đai", "1", "10.0", "1", "0"],
        ["Hộ tịch", "1", "5.0", "0", "1"],
    ]
    expect(page.locator("#table-late_fields tfoot")).to_contain_text("Cộng")
    screenshot(page, "board")


def test_the_rewritten_and_accountability_tables_download_as_excel(
    page: Page, directory: LiveServer, watched: Watched, tmp_path: Path
) -> None:
    seed_week_44(directory)
    sign_in(page, directory, LEADER)
    page.goto(f"{directory.url}/board?week={W44}")

    def download(table: str) -> Any:
        with page.expect_download() as info:
            page.locator(f"section[aria-labelledby={table}-title]").get_by_role(
                "link", name="Tải Excel (.xlsx)"
            ).click()
        return info.value

    officers = download("late_officers")
    assert officers.suggested_filename == f"giao-ban-{W44}-{UNIT}-tre-han-can-bo.xlsx"
    assert list(opened(officers, tmp_path).iter_rows(values_only=True)) == [
        ("Cán bộ", "Tài khoản", "Hồ sơ trễ hạn", "Giờ làm việc vượt hạn", "Chưa xin lỗi",
         "Xin lỗi muộn"),
        (HANDLER.full_name, HANDLER.account, 2, 12, 1, 1),
        (LEADER.full_name, LEADER.account, 1, 3, 1, 0),
    ]  # fmt: skip

    units = download("late_units")
    assert units.suggested_filename == f"giao-ban-{W44}-{UNIT}-tre-han-don-vi.xlsx"
    lines = list(opened(units, tmp_path).iter_rows(values_only=True))
    assert lines[1:] == [
        (UNIT, "Chi nhánh VPĐKĐĐ Tuy Phong", 2, 15, 1, 1),
        ("Cộng", "Toàn phạm vi", 2, 15, 1, 1),
    ]

    fields = download("late_fields")
    assert fields.suggested_filename == f"giao-ban-{W44}-{UNIT}-tre-han-linh-vuc.xlsx"
    lines = list(opened(fields, tmp_path).iter_rows(values_only=True))
    assert [line[:3] for line in lines[1:]] == [
        ("Đất đai", 1, 10),
        ("Hộ tịch", 1, 5),
        ("Cộng", 2, 15),
    ]

    rewritten = download("rewritten")
    assert rewritten.suggested_filename == f"giao-ban-{W44}-{UNIT}-sua-ngay.xlsx"
    lines = list(opened(rewritten, tmp_path).iter_rows(values_only=True))
    assert lines[0][-3:] == ("Ngày bị sửa", "Giá trị trước", "Sửa thành")
    assert lines[1][0] == REWRITTEN
    assert lines[1][-3:] == (
        "Ngày hẹn trả kết quả",
        datetime(2024, 10, 29, 17, 0),
        datetime(2024, 11, 1, 17, 0),
    )
