"""The demo's fixed catalogue: procedures, units and staff of a made-up one-stop desk.

Data only, no drawing: :mod:`services.app.demo.generator` draws dossiers over it. Procedure codes
(``MaTTHC``) are in the DVCQG style but illustrative; people are made up, with e-mail addresses
under example.gov.vn and no phone or Zalo id, so no real person can be reached.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Procedure:
    """An administrative procedure as the national catalogue names it, with its demo share."""

    code: str  # MaTTHC
    name: str  # TenTTHC
    field: str  # TenLinhVuc
    days: int  # legal deadline in working days
    weight: int


LAND: Final = (
    Procedure(
        "1.004227",
        "Đăng ký biến động quyền sử dụng đất, quyền sở hữu tài sản gắn liền với đất",
        "Đất đai",
        10,
        30,
    ),
    Procedure(
        "1.004203",
        "Cấp đổi Giấy chứng nhận quyền sử dụng đất, quyền sở hữu tài sản gắn liền với đất",
        "Đất đai",
        7,
        15,
    ),
    Procedure(
        "1.004217", "Đăng ký, cấp Giấy chứng nhận quyền sử dụng đất lần đầu", "Đất đai", 20, 10
    ),
    Procedure(
        "1.004311",
        "Xóa đăng ký thế chấp bằng quyền sử dụng đất, tài sản gắn liền với đất",
        "Đăng ký biện pháp bảo đảm",
        3,
        20,
    ),
    Procedure("1.004189", "Cung cấp thông tin, dữ liệu đất đai", "Đất đai", 2, 10),
)
BUSINESS_AND_BUILDING: Final = (
    Procedure(
        "1.001612",
        "Cấp giấy chứng nhận đăng ký hộ kinh doanh",
        "Thành lập và hoạt động của hộ kinh doanh",
        3,
        8,
    ),
    Procedure(
        "2.000720",
        "Đăng ký thay đổi nội dung đăng ký hộ kinh doanh",
        "Thành lập và hoạt động của hộ kinh doanh",
        3,
        4,
    ),
    Procedure(
        "1.009994",
        "Cấp giấy phép xây dựng mới đối với nhà ở riêng lẻ",
        "Hoạt động xây dựng",
        15,
        6,
    ),
)
COMMUNE: Final = (
    Procedure("1.001193", "Đăng ký khai sinh", "Hộ tịch", 1, 18),
    Procedure("1.000894", "Đăng ký kết hôn", "Hộ tịch", 1, 6),
    Procedure("1.000656", "Đăng ký khai tử", "Hộ tịch", 1, 4),
    Procedure("1.004884", "Cấp bản sao trích lục hộ tịch", "Hộ tịch", 1, 8),
    Procedure("1.004873", "Cấp Giấy xác nhận tình trạng hôn nhân", "Hộ tịch", 3, 8),
    Procedure("2.000815", "Chứng thực bản sao từ bản chính giấy tờ, văn bản", "Chứng thực", 1, 20),
    Procedure("2.000884", "Chứng thực chữ ký trong các giấy tờ, văn bản", "Chứng thực", 1, 8),
    *BUSINESS_AND_BUILDING,
)


@dataclass(frozen=True, slots=True)
class DemoUnit:
    """An agency of the directory, and what the demo needs to draw its dossiers."""

    code: str
    name: str
    parent_code: str | None = None
    replaced_by: str | None = None
    slug: str = ""  # suffix of its officers' accounts
    department: str = ""  # PhongBanXuLy of its steps
    procedures: tuple[Procedure, ...] = ()
    weight: int = 0  # share of the dossiers it decides


PROVINCE: Final = "000.00.00.H08"
UNITS: Final = (
    DemoUnit(PROVINCE, "UBND tỉnh Lâm Đồng", slug="tinh"),
    DemoUnit(
        "000.00.12.H08",
        "Chi nhánh Văn phòng đăng ký đất đai Tuy Phong",
        PROVINCE,
        slug="vpdkdd",
        department="Chi nhánh Văn phòng đăng ký đất đai",
        procedures=LAND,
        weight=30,
    ),
    DemoUnit(
        "000.21.12.H08",
        "UBND xã Tuy Phong",
        PROVINCE,
        slug="tuyphong",
        department="Văn phòng HĐND và UBND xã",
        procedures=COMMUNE,
        weight=22,
    ),
    DemoUnit(
        "000.22.12.H08",
        "UBND xã Liên Hương",
        PROVINCE,
        slug="lienhuong",
        department="Văn phòng HĐND và UBND xã",
        procedures=COMMUNE,
        weight=22,
    ),
    DemoUnit(
        "000.23.12.H08",
        "UBND xã Phan Rí Cửa",
        PROVINCE,
        slug="phanricua",
        department="Văn phòng HĐND và UBND xã",
        procedures=COMMUNE,
        weight=20,
    ),
    # An agency abolished on 1/7/2025: old dossiers still carry its code, the commune answers.
    DemoUnit(
        "000.00.30.H08",
        "UBND huyện Tuy Phong (cũ)",
        PROVINCE,
        replaced_by="000.21.12.H08",
        procedures=BUSINESS_AND_BUILDING,
        weight=6,
    ),
)
UNIT_BY_CODE: Final[dict[str, DemoUnit]] = {unit.code: unit for unit in UNITS}

# (unit code, role, full name); accounts and e-mails derive from the name.
STAFF: Final = (
    (PROVINCE, "leader", "Phạm Minh Tuấn"),
    ("000.00.12.H08", "handler", "Trần Thị Bích"),
    ("000.00.12.H08", "handler", "Nguyễn Văn Hùng"),
    ("000.00.12.H08", "handler", "Lê Quang Vinh"),
    ("000.00.12.H08", "desk", "Võ Thị Thu Hà"),
    ("000.00.12.H08", "leader", "Đặng Văn Lâm"),
    ("000.21.12.H08", "handler", "Huỳnh Thị Mai"),
    ("000.21.12.H08", "handler", "Phan Văn Đức"),
    ("000.21.12.H08", "handler", "Bùi Thị Lan"),
    ("000.21.12.H08", "desk", "Lê Thị Cúc"),
    ("000.21.12.H08", "leader", "Nguyễn Hữu Phước"),
    ("000.22.12.H08", "handler", "Trương Văn Tài"),
    ("000.22.12.H08", "handler", "Đỗ Thị Hồng"),
    ("000.22.12.H08", "handler", "Ngô Minh Khoa"),
    ("000.22.12.H08", "desk", "Hồ Thị Ngọc Ánh"),
    ("000.22.12.H08", "leader", "Dương Văn Sơn"),
    ("000.23.12.H08", "handler", "Lý Thị Kim Oanh"),
    ("000.23.12.H08", "handler", "Mai Văn Thành"),
    ("000.23.12.H08", "handler", "Châu Thị Diễm"),
    ("000.23.12.H08", "desk", "Tô Văn Lộc"),
    ("000.23.12.H08", "leader", "Vũ Thị Thanh Hương"),
)
FAMILY: Final = (
    *("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh"),
    *("Phan", "Võ", "Đặng", "Bùi", "Đỗ"),
)
MIDDLE: Final = ("Văn", "Thị", "Minh", "Hữu", "Thanh", "Ngọc", "Quốc", "Thu", "Đức", "Kim")
GIVEN: Final = (
    *("An", "Bình", "Cường", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hòa", "Hùng", "Khánh"),
    *("Linh", "Long", "Mai", "Nam", "Nga", "Phúc", "Quân", "Sang", "Tâm", "Thảo", "Trang"),
)


def ascii_slug(text: str) -> str:
    """``Võ Thị Thu Hà`` → ``vothithuha`` (accounts are ASCII)."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if c.isalnum() and c.isascii()).lower()


@dataclass(frozen=True, slots=True)
class DemoOfficer:
    """An officer as the directory service stores it."""

    account: str
    full_name: str
    unit_code: str
    role: str
    email: str


def officers() -> list[DemoOfficer]:
    """The staff with ASCII accounts (``name.unit``) and example.gov.vn addresses."""
    found: list[DemoOfficer] = []
    for unit_code, role, name in STAFF:
        account = f"{ascii_slug(name)}.{UNIT_BY_CODE[unit_code].slug}"
        found.append(DemoOfficer(account, name, unit_code, role, f"{account}@example.gov.vn"))
    return found


def current_units() -> list[DemoUnit]:
    """Units that decide dossiers today (not the province, not the merged one)."""
    return [unit for unit in UNITS if unit.procedures and unit.replaced_by is None]


def department(unit: DemoUnit) -> str:
    """The ``PhongBanXuLy`` of a unit's steps; a merged unit's are its successor's."""
    if unit.department:
        return unit.department
    successor = UNIT_BY_CODE.get(unit.replaced_by or "")
    return successor.department if successor else unit.name
