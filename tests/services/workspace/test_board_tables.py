"""The board's new tables as the page draws them and as the ``.xlsx`` a leader downloads holds
them: the rewritten dossiers with the date that moved, and the late-dossier accountability."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

import openpyxl  # type: ignore[import-untyped]
import pytest

from services.reconciler.kpis import review
from services.reconciler.lateness.formulas import NO_OFFICER
from services.reconciler.lateness.service import LatenessReport
from services.workspace.exports import xlsx
from services.workspace.pages.board_lateness import (
    fields_table,
    hours_text,
    lateness_table,
    officers_table,
    units_table,
)
from services.workspace.pages.board_tables import list_table, rewrite_cells
from shared.clock import VN_TZ
from shared.vocabulary import Kind

CODE = "000.00.12.H08-250303-0001"
DETAILS = {  # as services.reconciler.rewrites writes them (ISO 8601, local offset)
    "field": "NgayHenTra",
    "before": "2025-03-10T17:00:00+07:00",
    "before_seen_at": "2025-03-03T09:00:00+07:00",
    "after": "2025-03-14T17:00:00+07:00",
    "after_seen_at": "2025-03-12T09:00:00+07:00",
    "system_status": 4,
}


def vn(day: int, hour: int) -> datetime:
    return datetime(2025, 3, day, hour, tzinfo=VN_TZ)


def entry(details: dict[str, Any]) -> review.ReviewEntry:
    return review.ReviewEntry(
        dossier_code=CODE,
        unit_code="000.00.12.H08",
        procedure_name="Đăng ký biến động quyền sử dụng đất",
        dossier_status=4,
        received_at=vn(3, 8),
        due_at=vn(14, 17),
        since=vn(12, 9),
        severity="critical",
        status="open",
        resolved_at=None,
        responsible="tranthib.vpdkdd",
        responsible_name="Trần Thị B",
        details=details,
    )


def rewritten(details: dict[str, Any] = DETAILS) -> review.ReviewList:
    return review.ReviewList("rewritten", Kind.DATES_REWRITTEN, [entry(details)], total=1)


def sheet_of(content: bytes) -> Any:
    return openpyxl.load_workbook(io.BytesIO(content)).active


def test_a_rewritten_dossier_says_which_date_moved_from_what_to_what() -> None:
    table = list_table(rewritten())
    assert table.title == "Ngày hẹn trả / ngày xử lý bị sửa lại"
    assert [column.header for column in table.columns[-3:]] == [
        "Ngày bị sửa",
        "Giá trị trước",
        "Sửa thành",
    ]
    assert "received_at" not in {column.key for column in table.columns}  # makes room
    (row,) = table.rows
    assert row["rewritten_field"] == "Ngày hẹn trả kết quả"
    assert (row["rewritten_before"], row["rewritten_after"]) == (vn(10, 17), vn(14, 17))
    assert table.notes  # what "rewritten" means, under the table


def test_the_other_lists_keep_their_columns() -> None:
    late = review.ReviewList("late", Kind.OVERDUE_NO_APOLOGY, [entry({})], total=1)
    table = list_table(late)
    assert "rewritten_field" not in {column.key for column in table.columns}
    assert "rewritten_field" not in table.rows[0]


def test_a_rewrite_of_an_end_stamp_is_named_as_the_alert_names_it() -> None:
    cells = rewrite_cells({**DETAILS, "field": "NgayKetThucXuLy"})
    assert cells["rewritten_field"] == "Ngày kết thúc xử lý"


def test_details_without_a_readable_date_leave_the_cell_empty() -> None:
    assert rewrite_cells({"field": "NgayTra", "before": "không rõ"}) == {
        "rewritten_field": "Ngày trả kết quả",
        "rewritten_before": None,
        "rewritten_after": None,
    }
    assert rewrite_cells({})["rewritten_field"] is None


def test_the_rewritten_export_holds_the_dates_as_excel_dates_in_vietnam_time() -> None:
    sheet = sheet_of(xlsx(list_table(rewritten()), heading="Giao ban"))
    header = [cell.value for cell in sheet[1]]
    assert header[-3:] == ["Ngày bị sửa", "Giá trị trước", "Sửa thành"]
    line = [cell.value for cell in sheet[2]]
    assert line[0] == CODE
    assert line[-3:] == [
        "Ngày hẹn trả kết quả",
        datetime(2025, 3, 10, 17),
        datetime(2025, 3, 14, 17),
    ]
    assert sheet.cell(row=2, column=len(header)).number_format == "dd/mm/yyyy hh:mm"


# The late-dossier accountability --------------------------------------------------------------


def line(key: str, label: str, late: int, hours: float, without: int, after: int) -> dict[str, Any]:
    return {
        "key": key,
        "label": label,
        "late_dossiers": late,
        "overrun_working_hours": hours,
        "without_apology": without,
        "late_apology": after,
    }


UNITS = LatenessReport(
    [
        line("000.23.12.H08", "UBND xã Phan Rí Cửa", 1, 24.0, 1, 0),
        line("000.00.12.H08", "000.00.12.H08", 3, 17.25, 2, 1),  # a code the directory lacks
    ],
    total=4,
)
OFFICERS = LatenessReport(
    [
        line("binh.vpdkdd", "Lê Văn Bình", 2, 8.0, 1, 1),
        line(NO_OFFICER, NO_OFFICER, 1, 2.0, 1, 0),
    ],
    total=3,
)
FIELDS = LatenessReport(
    [line("Đất đai", "Đất đai", 2, 12.5, 2, 0), line("Hộ tịch", "Hộ tịch", 1, 5.0, 0, 1)],
    total=3,
)


def test_units_by_overrun_are_named_and_totalled() -> None:
    table = units_table(UNITS)
    assert [(row["unit_code"], row["unit_name"]) for row in table.rows] == [
        ("000.23.12.H08", "UBND xã Phan Rí Cửa"),
        ("000.00.12.H08", ""),
    ]
    assert table.footer is not None
    assert {key: table.footer[key] for key in ("late_dossiers", "overrun_working_hours")} == {
        "late_dossiers": 4,
        "overrun_working_hours": 41.25,
    }
    assert (table.footer["without_apology"], table.footer["late_apology"]) == (3, 1)


def test_officers_are_not_totalled_since_a_dossier_may_count_for_several() -> None:
    table = officers_table(OFFICERS)
    assert table.footer is None
    assert [(row["officer_name"], row["account"]) for row in table.rows] == [
        ("Lê Văn Bình", "binh.vpdkdd"),
        (NO_OFFICER, None),  # no account to show for the dossiers no officer held
    ]


def test_an_empty_week_has_no_total_row() -> None:
    assert units_table(LatenessReport([], 0)).footer is None
    assert fields_table(LatenessReport([], 0)).rows == []


@pytest.mark.parametrize(
    ("name", "header", "first"),
    [
        ("late_units", ("Mã đơn vị", "Tên đơn vị"), ("000.23.12.H08", "UBND xã Phan Rí Cửa")),
        ("late_officers", ("Cán bộ", "Tài khoản"), ("Lê Văn Bình", "binh.vpdkdd")),
        ("late_fields", ("Lĩnh vực",), ("Đất đai",)),
    ],
)
def test_each_accountability_export_holds_the_rows_of_the_page(
    name: str, header: tuple[str, ...], first: tuple[str, ...]
) -> None:
    report = {"late_units": UNITS, "late_officers": OFFICERS, "late_fields": FIELDS}[name]
    table = lateness_table(name, report)
    sheet = sheet_of(xlsx(table, heading="Giao ban"))
    lines = list(sheet.iter_rows(values_only=True))
    figures = ("Hồ sơ trễ hạn", "Giờ làm việc vượt hạn", "Chưa xin lỗi", "Xin lỗi muộn")
    assert lines[0] == (*header, *figures)
    width = len(header)
    assert lines[1][:width] == first
    item = report.items[0]
    assert lines[1][width:] == (
        item["late_dossiers"],
        item["overrun_working_hours"],
        item["without_apology"],
        item["late_apology"],
    )
    hours = sheet.cell(row=2, column=width + 2)
    assert hours.number_format == "#,##0.00"
    rows = len(report.items) + (1 if table.footer is not None else 0)
    assert len(lines) == 1 + rows
    if table.footer is not None:
        assert lines[-1][0] == "Cộng"


def test_a_fractional_overrun_is_not_truncated_in_the_export() -> None:
    sheet = sheet_of(xlsx(units_table(UNITS), heading="Giao ban"))
    assert sheet.cell(row=3, column=4).value == 17.25


@pytest.mark.parametrize(
    ("hours", "text"),
    [(17.25, "17,25"), (8.0, "8"), (0.5, "0,5"), (1234.5, "1.234,5"), (0.0, "0"), (None, "—")],
)
def test_working_hours_read_the_vietnamese_way(hours: float | None, text: str) -> None:
    assert hours_text(hours) == text
