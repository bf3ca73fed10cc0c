"""Form 06, the control sheet, rebuilt from progress steps with §7's arithmetic (pure).

Worked by hand over the working-day calendar: office hours 07:00–11:30 and 13:30–17:00,
Monday to Friday (5/3/2025 is a Wednesday, 8–9/3 a weekend).
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import docx
from docx.document import Document

from services.reconciler.forms.control_sheet import (
    COLUMNS,
    DESK,
    TITLE,
    ControlSheet,
    HandOff,
    control_sheet_document,
    hand_offs,
)
from services.reconciler.forms.official import Agency, docx_bytes
from services.reconciler.lateness.formulas import StepFacts, lateness
from shared.calendar import WorkingCalendar
from shared.clock import VN_TZ

CALENDAR = WorkingCalendar()
CODE = "000.00.12.H08-250305-0003"
NAMES = {"an": "Nguyễn Thị An", "binh": "Lê Văn Bình", "chi": "Trần Thị Chi"}
ONE_STOP = "Bộ phận Một cửa"
REGISTRY = "Phòng Đăng ký"


def vn(month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2025, month, day, hour, minute, second, tzinfo=VN_TZ)


def step(
    officer: str,
    department: str,
    start: datetime,
    allowed: datetime | None = None,
    status: int = 4,
) -> StepFacts:
    return StepFacts(officer, department, status, start, allowed)


# Three hand-offs, one of each result, then the result back to the desk.
STEPS = [
    step("an", ONE_STOP, vn(3, 5, 8), allowed=vn(3, 5, 10)),
    step("binh", REGISTRY, vn(3, 5, 9, 30), allowed=vn(3, 6, 14)),  # an: 30 min early
    step("chi", REGISTRY, vn(3, 6, 14, 0, 40), allowed=vn(3, 7, 16)),  # binh: the same minute
    step("dung", "Lãnh đạo", vn(3, 10, 9, 30), allowed=vn(3, 10, 16)),  # chi: over a weekend
]
FINISHED = vn(3, 10, 15)


def worked_example() -> tuple[HandOff, ...]:
    return hand_offs(STEPS, end=FINISHED, ended=True, status=9, names=NAMES, calendar=CALENDAR)


def test_one_row_per_hand_off_each_with_the_result_of_the_step_it_ended() -> None:
    rows = worked_example()
    assert [(row.giver_text, row.receiver_text) for row in rows] == [
        ("—", f"Nguyễn Thị An (an), {ONE_STOP}"),
        (f"Nguyễn Thị An (an), {ONE_STOP}", f"Lê Văn Bình (binh), {REGISTRY}"),
        (f"Lê Văn Bình (binh), {REGISTRY}", f"Trần Thị Chi (chi), {REGISTRY}"),
        (f"Trần Thị Chi (chi), {REGISTRY}", "dung, Lãnh đạo"),  # not in the directory
        ("dung, Lãnh đạo", DESK),
    ]
    assert [row.at for row in rows] == [
        vn(3, 5, 8),
        vn(3, 5, 9, 30),
        vn(3, 6, 14, 0, 40),
        vn(3, 10, 9, 30),
        FINISHED,
    ]
    assert [row.result_label for row in rows] == [
        "—",
        "Trước hạn",
        "Đúng hạn",
        "Quá hạn",
        "Trước hạn",
    ]
    # Friday 16:00–17:00 and Monday 07:00–09:30: the weekend is no one's overrun.
    assert rows[3].overrun == timedelta(hours=3, minutes=30)
    assert rows[3].overrun_text == "3 giờ 30 phút làm việc"
    assert [row.overrun for row in (rows[0], rows[1], rows[2], rows[4])] == [timedelta(0)] * 4
    assert rows[3].note == "Hạn của bước: 07/03/2025 16:00"
    assert rows[4].note == "Hạn của bước: 10/03/2025 16:00; Kết thúc: Đã xử lý xong"
    assert rows[2].at_text == "14 giờ 00 phút, ngày 06 tháng 3 năm 2025"


def test_the_overrun_is_the_one_section_7_charges() -> None:
    late = lateness(STEPS, due_at=vn(3, 7, 17), end=FINISHED, unit_code=None, calendar=CALENDAR)
    assert [charged.overrun for charged in late.steps][2] == worked_example()[3].overrun


def test_time_waiting_on_the_applicant_is_no_ones_overrun() -> None:
    rows = hand_offs(
        [
            step("an", REGISTRY, vn(3, 5, 8), allowed=vn(3, 5, 9)),
            step("an", REGISTRY, vn(3, 5, 10), allowed=vn(3, 5, 11), status=5),  # waits a day
            step("binh", REGISTRY, vn(3, 6, 10), allowed=vn(3, 6, 11)),
        ],
        end=vn(3, 6, 11),
        ended=True,
        status=10,
        names={},
        calendar=CALENDAR,
    )
    assert [(row.result, row.overrun) for row in rows] == [
        ("none", timedelta(0)),
        ("late", timedelta(hours=1)),  # 09:00–10:00
        ("none", timedelta(0)),  # the applicant's time
        ("on_time", timedelta(0)),
    ]
    assert rows[2].note == "Chờ người nộp hồ sơ bổ sung hoặc thực hiện nghĩa vụ tài chính"
    assert rows[3].receiver_text == DESK


def test_an_open_dossier_ends_with_the_step_still_holding_it() -> None:
    now = vn(3, 11, 8)  # Tuesday
    steps = [*STEPS[:3], step("chi", REGISTRY, vn(3, 10, 9, 30), allowed=vn(3, 10, 14))]
    rows = hand_offs(steps, end=now, ended=False, status=4, names=NAMES, calendar=CALENDAR)
    holding = rows[-1]
    assert holding.at is None and holding.at_text == "—"
    assert holding.receiver_text == "(đang giữ hồ sơ)"
    assert holding.result == "late"
    assert holding.overrun == timedelta(hours=4)  # Monday 14:00–17:00, Tuesday 07:00–08:00
    assert holding.note == "Hạn của bước: 10/03/2025 14:00; tính đến 11/03/2025 08:00"

    in_time = hand_offs(
        steps, end=vn(3, 10, 11), ended=False, status=4, names=NAMES, calendar=CALENDAR
    )
    assert (in_time[-1].result_label, in_time[-1].overrun_text) == ("Đang xử lý", "")


def test_steps_without_allowance_and_hand_offs_after_hours() -> None:
    rows = hand_offs(
        [
            step("an", REGISTRY, vn(3, 5, 8)),  # no NgayKetThucTheoQuyDinh
            step("binh", REGISTRY, vn(3, 5, 9), allowed=vn(3, 7, 17)),  # Friday at the close
            step("chi", REGISTRY, vn(3, 8, 9)),  # Saturday morning: no working time past it
        ],
        end=vn(3, 10, 9),
        ended=False,
        status=4,
        names={},
        calendar=CALENDAR,
    )
    assert [(row.result_label, row.note) for row in rows] == [
        ("—", "Bắt đầu xử lý"),
        ("—", "Bước không có thời hạn theo quy định"),
        ("Đúng hạn", "Hạn của bước: 07/03/2025 17:00; giao sau hạn, ngoài giờ làm việc"),
        ("Đang xử lý", "Bước không có thời hạn theo quy định; tính đến 10/03/2025 09:00"),
    ]


def test_a_dossier_without_steps_has_no_rows() -> None:
    assert hand_offs([], end=vn(3, 5, 8), ended=False, status=2, names={}, calendar=CALENDAR) == ()


def reopened(document: Document) -> Document:
    return docx.Document(io.BytesIO(docx_bytes(document)))


def test_the_document_holds_the_same_rows() -> None:
    rows = worked_example()
    sheet = ControlSheet(
        code=CODE,
        agency=Agency("Chi nhánh VPĐKĐĐ Tuy Phong", "Văn phòng đăng ký đất đai tỉnh Lâm Đồng"),
        procedure_name="Đăng ký biến động quyền sử dụng đất",
        received_at=vn(3, 5, 8),
        due_at=vn(3, 12, 17),
        made_at=vn(3, 11, 8),
        rows=rows,
    )
    document = reopened(control_sheet_document(sheet))
    paragraphs = [paragraph.text for paragraph in document.paragraphs]
    assert TITLE in paragraphs
    assert f"Mã hồ sơ: {CODE}" in paragraphs
    assert "Cơ quan (bộ phận) giải quyết hồ sơ: Chi nhánh VPĐKĐĐ Tuy Phong" in paragraphs
    assert "Hạn trả kết quả: 17 giờ 00 phút, ngày 12 tháng 3 năm 2025" in paragraphs
    heading, table = document.tables
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in [
        p.text for p in heading.rows[0].cells[1].paragraphs
    ]
    written = [tuple(cell.text for cell in row.cells) for row in table.rows]
    assert written[0] == COLUMNS
    assert written[1:] == [row.cells for row in rows]
    assert written[4] == (
        f"4. Giao: Trần Thị Chi (chi), {REGISTRY}\nNhận: dung, Lãnh đạo",
        "9 giờ 30 phút, ngày 10 tháng 3 năm 2025",
        "Quá hạn\n3 giờ 30 phút làm việc",
        "Hạn của bước: 07/03/2025 16:00",
    )
