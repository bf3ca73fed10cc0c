"""The Vietnamese summary ``doisoat demo`` prints at the end: plain text, aligned columns.

A view only: it reads a :class:`~services.app.demo.summary.DemoSummary` (what the pipeline found,
read back from the database) and the :class:`~services.app.demo.plans.DemoData` it was seeded
with, and queries nothing. Labels, severities and KPI targets come from :mod:`shared.vocabulary`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

import orjson
from sqlalchemy.engine import make_url

from services.app.console import number
from services.app.demo.plans import DemoData
from services.app.demo.summary import TOTAL_UNIT, DemoSummary
from shared.clock import VN_TZ
from shared.config import DEFAULT_DATABASE_URL
from shared.vocabulary import (
    KIND_LABELS,
    KPI_TARGETS,
    SEVERITY_LABELS,
    SEVERITY_ORDER,
    Kind,
    percent_text,
)

ADMIN_ACCOUNT: Final = "quantri-demo"
KPI_COLUMNS: Final[tuple[tuple[str, str, int], ...]] = (  # (item key, header, target)
    ("on_time_pct", "Đúng hạn", KPI_TARGETS["on_time_pct"]),
    ("online_pct", "Trực tuyến", KPI_TARGETS["online_pct"]),
    ("digitised_pct", "Số hóa", KPI_TARGETS["digitised_pct"]),
    ("in_system_pct", "Có trên HT", KPI_TARGETS["in_system_pct"]),
)
WEEKDAYS: Final = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật")
HEADINGS: Final = (
    "DỮ LIỆU MẪU",
    "SAI LỆCH PHÁT HIỆN",
    "CHỈ SỐ THEO ĐƠN VỊ",
    "KHÓA QUẢN TRỊ",
    "TRANG LÀM VIỆC",
    "TIẾP THEO",
)


def _mark(value: float | None, target: int) -> str:
    """Whether a KPI meets its QĐ 766 target."""
    if value is None:
        return " "
    return "✓" if value >= target else "✗"


def _table(rows: Sequence[Sequence[str]], align: str, indent: str = "  ") -> list[str]:
    """Rows of cells, column widths from the widest cell; ``align`` is one l/r per column."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(align))]
    lines = []
    for row in rows:
        cells = [
            cell.ljust(width) if side == "l" else cell.rjust(width)
            for cell, width, side in zip(row, widths, align, strict=True)
        ]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def _moment(moment: datetime) -> str:
    """``Thứ Hai 07/12/2026 01:11``, in Vietnam time."""
    local = moment.astimezone(VN_TZ)
    return f"{WEEKDAYS[local.weekday()]} {local:%d/%m/%Y %H:%M}"


def render(
    summary: DemoSummary, data: DemoData, *, port: int = 8000, database_url: str | None = None
) -> str:
    """The Vietnamese summary printed at the end (plain text, aligned columns)."""
    lines: list[str] = []
    rule = "─" * 78
    base = f"http://localhost:{port}"
    names = {unit.code: unit.name for unit in data.units}

    lines += [
        rule,
        "doisoat demo — Bộ phận Một cửa mẫu (dữ liệu tổng hợp)",
        f"Thời điểm đối soát: {_moment(summary.now)} (giờ Việt Nam) · seed {summary.seed}",
        rule,
        "",
        "DỮ LIỆU MẪU",
    ]
    unit_rows = []
    for unit in data.units:
        name = unit.name if unit.parent_code is None else f"  {unit.name}"
        if unit.replaced_by:
            name += f" — đã sáp nhập vào {unit.replaced_by}"
        unit_rows.append([unit.code, name])
    lines += _table(unit_rows, "ll")
    outcomes = summary.event_outcomes
    lines += [
        "",
        f"  {number(summary.dossiers)} hồ sơ trong 4 tuần ({data.first_day:%d/%m}–"
        f"{data.last_day:%d/%m/%Y}); {summary.officers} cán bộ có email @example.gov.vn.",
        f"  {number(summary.events)} sự kiện DongBoHoSoMC / CapNhatTienDoHoSoMC, gửi lộn thứ tự:",
        f"  {number(outcomes['stored'])} ghi nhận, {number(outcomes['duplicate'])} gửi lặp bị "
        "bỏ qua (trùng event_id).",
        f"  {number(summary.field_reports)} báo cáo trả kết quả / rút hồ sơ của Bộ phận Một cửa.",
        "",
        "SAI LỆCH PHÁT HIỆN",
    ]
    kind_rows = [["Loại sai lệch", "Mức độ", "Cài sẵn", "Phát hiện", ""]]
    for kind in Kind:
        planted, found = summary.planted.get(kind.value, 0), summary.found.get(kind.value, 0)
        severity = summary.severities.get(kind.value, {})
        label = ", ".join(SEVERITY_LABELS[s] for s in SEVERITY_ORDER if severity.get(s)) or "—"
        kind_rows.append(
            [
                KIND_LABELS[kind],
                label,
                str(planted),
                str(found),
                "✓" if planted == found else "✗",
            ]
        )
    planted_total, found_total = sum(summary.planted.values()), sum(summary.found.values())
    kind_rows.append(["Cộng", "", str(planted_total), str(found_total), ""])
    lines += _table(kind_rows, "llrrl")
    lines += [
        "  Cài sẵn: số hồ sơ demo cố ý tạo cho mỗi loại; Phát hiện: số sai lệch mà bộ",
        "  đối soát đã mở (đọc từ bảng discrepancies).",
        "",
        f"CHỈ SỐ THEO ĐƠN VỊ ({data.first_day:%d/%m}–{data.last_day:%d/%m/%Y}, theo QĐ 766)",
    ]
    header = ["Đơn vị", "Tiếp nhận", *(title for _, title, _ in KPI_COLUMNS), "Không hạn"]
    target_row = ["Mục tiêu", "", *(f"≥ {target}%" for _, _, target in KPI_COLUMNS), ""]
    target_row[-2] = f"{KPI_TARGETS['in_system_pct']}%"
    kpi_rows = [header, target_row]
    for item in summary.kpis:
        if not item["received"] and item["in_system_pct"] is None:
            continue  # the province and merged codes decide nothing themselves
        unit_label = "Toàn bộ" if item["unit_code"] == TOTAL_UNIT else str(item["unit_code"])
        cells = [unit_label, number(item["received"])]
        for key, _, target in KPI_COLUMNS:
            cells.append(f"{percent_text(item[key])} {_mark(item[key], target)}")
        cells.append(number(item["without_due_date"]))
        kpi_rows.append(cells)
    lines += _table(kpi_rows, "lrrrrrr")
    merged = [unit for unit in data.units if unit.replaced_by]
    for unit in merged:
        successor = names.get(unit.replaced_by or "", "")
        lines.append(f"  Hồ sơ mang mã cũ {unit.code} tính cho {unit.replaced_by} ({successor}).")
    lines += [
        "  Đúng hạn: kết thúc ≤ hạn trả (hồ sơ chưa xong tính đến hôm nay).",
        "  Có trên HT: hồ sơ Một cửa báo đã trả / rút mà hệ thống có.",
        "  Không hạn: hồ sơ không có ngày hẹn trả (không tính vào tỷ lệ đúng hạn).",
        "",
        "KHÓA QUẢN TRỊ",
        "  Khóa API chỉ đặt được qua biến môi trường; demo không lưu khóa, hãy chép lại:",
        f"    {summary.admin_key}",
        "",
        "TRANG LÀM VIỆC",
        "  Sau khi chạy dịch vụ (bước 1 dưới đây), mở một liên kết để đăng nhập (mỗi liên kết",
        "  dùng một lần, trong 15 phút; hết hạn thì: doisoat sign-in-link TÀI_KHOẢN):",
        *(
            f"    {label:<9} {name} ({account}):\n      {link}"
            for label, account, name, link in summary.sign_in_links
        ),
        "",
        "TIẾP THEO",
        "  1. Đặt khóa và chạy dịch vụ (cùng cơ sở dữ liệu):",
    ]
    keys = orjson.dumps([{"key": summary.admin_key, "role": "admin", "account": ADMIN_ACCOUNT}])
    lines.append(f"     export DOISOAT_API_KEYS='{keys.decode()}'")
    if database_url and database_url != DEFAULT_DATABASE_URL:
        shown = make_url(database_url).render_as_string(hide_password=True)
        lines.append(f"     # và DOISOAT_DATABASE_URL như khi chạy demo: {shown}")
    auth = f"-H 'Authorization: Bearer {summary.admin_key}'"
    example = next(
        (plan.code for plan in data.plans if plan.planted is Kind.RETURNED_BUT_OPEN), None
    )
    lines += [
        "     doisoat run",
        f"  2. Mở tài liệu API: {base}/docs",
        "  3. Xem các sai lệch đang mở:",
        f"     curl -s {auth} '{base}/api/v1/discrepancies?status=open&limit=20'",
        "  4. Các hồ sơ đã trả nhưng hệ thống vẫn mở:",
        f"     curl -s {auth} '{base}/api/v1/discrepancies?kind=RETURNED_BUT_OPEN'",
    ]
    if example:
        lines += [
            f"  5. Chi tiết một hồ sơ ({example}):",
            f"     curl -s {auth} '{base}/api/v1/dossiers/{example}'",
        ]
    lines += [
        f"  {6 if example else 5}. Chỉ số: curl -s {auth} "
        f"'{base}/api/v1/kpis?from={data.first_day:%Y-%m-%d}&to={data.last_day:%Y-%m-%d}'",
        rule,
    ]
    return "\n".join(lines)
