"""The synthetic one-stop desk of ``doisoat demo``: units, officers, dossiers and desk reports.

Pure and deterministic: the same ``seed``, ``now``, calendar and rule settings give the same data,
byte for byte (no set iteration, no clock, no hash order). Every dossier is drawn, then judged
with the real rules (:func:`services.reconciler.rules.evaluate`) at ``now``: a planted one must
show exactly its kind and an ordinary one nothing, else it is drawn again. So what the reconciler
later finds equals what was planted here, whatever the weekday, the hour, the office hours or the
thresholds in force.

Procedure codes (``MaTTHC``) are in the DVCQG style but illustrative; people are made up, with
e-mail addresses under example.gov.vn and no phone or Zalo id, so no real person can be reached.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Final

from services.reconciler import rules
from services.reconciler.rules import DeskReport, DossierFacts, Kind, RuleSettings
from shared.calendar import WorkingCalendar
from shared.clock import VN_TZ
from shared.dvcqg import effective_due_at, format_thoi_diem, optional_thoi_diem

SOURCE: Final = "motcua-demo"
PERIOD_DAYS: Final = 28  # dossiers received over the last four weeks
PLANTED_PER_KIND: Final = (3, 6)  # each kind is planted this many times (inclusive)
MIN_DOSSIERS: Final = 50
MAX_DOSSIERS: Final = 20_000
MAX_DRAWS: Final = 200
KIND_ORDER: Final = tuple(Kind)
_MINUTE = timedelta(minutes=1)
_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Procedure:
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
_UNIT_BY_CODE: Final = {unit.code: unit for unit in UNITS}

# (unit code, role, full name); accounts and e-mails derive from the name.
_STAFF: Final = (
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
_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Võ", "Đặng", "Bùi", "Đỗ")
_MIDDLE = ("Văn", "Thị", "Minh", "Hữu", "Thanh", "Ngọc", "Quốc", "Thu", "Đức", "Kim")
_GIVEN = (
    *("An", "Bình", "Cường", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hòa", "Hùng", "Khánh"),
    *("Linh", "Long", "Mai", "Nam", "Nga", "Phúc", "Quân", "Sang", "Tâm", "Thảo", "Trang"),
)


def ascii_slug(text: str) -> str:
    """``Võ Thị Thu Hà`` → ``vothithuha`` (accounts are ASCII)."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if c.isalnum() and c.isascii()).lower()


@dataclass(frozen=True, slots=True)
class DemoOfficer:
    account: str
    full_name: str
    unit_code: str
    role: str
    email: str


def officers() -> list[DemoOfficer]:
    found = []
    for unit_code, role, name in _STAFF:
        account = f"{ascii_slug(name)}.{_UNIT_BY_CODE[unit_code].slug}"
        found.append(DemoOfficer(account, name, unit_code, role, f"{account}@example.gov.vn"))
    return found


def current_units() -> list[DemoUnit]:
    """Units that decide dossiers today (not the province, not the merged one)."""
    return [unit for unit in UNITS if unit.procedures and unit.replaced_by is None]


# ---- plans ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Step:
    at: datetime
    status: int
    officer: str
    content: str
    title: str = "Chuyên viên"
    snapshot: bool = True  # the system pushes a full snapshot (DongBoHoSoMC) with the step
    progress: bool = True  # … and the step itself (CapNhatTienDoHoSoMC)
    emitted_at: datetime | None = None  # set by DossierPlan.settle


@dataclass(slots=True)
class DossierPlan:
    """One dossier as the procedure system would push it, and what the desk recorded."""

    unit: DemoUnit  # DonViXuLy (may be the merged, old code)
    procedure: Procedure
    channel: int
    digitised: int
    applicant: str
    received_at: datetime | None
    due_at: datetime | None  # NgayHenTra
    steps: list[Step]
    submitted_at: datetime | None = None
    finished_at: datetime | None = None
    returned_at: datetime | None = None
    refused_at: datetime | None = None
    reschedules: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    report: DeskReport | None = None
    report_unit: str = ""
    report_note: str | None = None
    planted: Kind | None = None
    code: str = ""

    @property
    def day(self) -> date:
        first = self.received_at or self.submitted_at or self.steps[0].at
        return first.astimezone(VN_TZ).date()

    def snapshot_data(self, step: Step) -> dict[str, Any]:
        """The DongBoHoSoMC payload as the system knew it at ``step``."""
        at = step.at
        data: dict[str, Any] = {
            "MaHoSo": self.code,
            "MaTTHC": self.procedure.code,
            "TenTTHC": self.procedure.name,
            "TenLinhVuc": self.procedure.field,
            "KenhThucHien": self.channel,
            "ChuHoSo": self.applicant,
            "TrangThaiHoSo": step.status,
            "DonViXuLy": self.unit.code,
            "HoSoCoThanhPhanSoHoa": self.digitised,
        }
        # (field, value, known since): the due date is set at reception, stamps when they happen
        stamps = (
            ("NgayNopHoSo", self.submitted_at, self.submitted_at),
            ("NgayTiepNhan", self.received_at, self.received_at),
            ("NgayHenTra", self.due_at, self.received_at),
            ("NgayKetThucXuLy", self.finished_at, self.finished_at),
            ("NgayTra", self.returned_at, self.returned_at),
            ("NgayTuChoi", self.refused_at, self.refused_at),
        )
        for name, moment, since in stamps:
            if moment is not None and since is not None and since <= at:
                data[name] = format_thoi_diem(moment)
        for list_name, entry in self.reschedules:
            if entry["NgayYeuCau"] <= format_thoi_diem(at):
                data.setdefault(list_name, []).append(entry)
        return data

    def settle(self, rng: random.Random, now: datetime) -> None:
        """Order the steps and give each the moment the system sent it (a short sync lag)."""
        self.steps.sort(key=lambda step: step.at)
        emitted = datetime.min.replace(tzinfo=VN_TZ)
        for step in self.steps:
            lag = timedelta(seconds=rng.randint(2, 90))
            emitted = max(emitted + timedelta(seconds=1), min(step.at + lag, now))
            step.emitted_at = emitted

    def envelopes(self) -> list[dict[str, Any]]:
        """Snapshots and progress steps, in the order they happened (the caller may shuffle)."""
        found: list[dict[str, Any]] = []
        for index, step in enumerate(self.steps, start=1):
            assert step.emitted_at is not None, "settle() first"
            stamp = step.emitted_at.astimezone(VN_TZ).isoformat()
            if step.progress:
                found.append(
                    {
                        "event_id": f"{SOURCE}-{self.code}-p{index:02d}",
                        "type": "dossier.progress",
                        "source": SOURCE,
                        "emitted_at": stamp,
                        "data": {
                            "MaHoSo": self.code,
                            "NguoiXuLy": step.officer,
                            "ChucDanh": step.title,
                            "ThoiDiemXuLy": format_thoi_diem(step.at),
                            "PhongBanXuLy": _department(self.unit),
                            "NoiDungXuLy": step.content,
                            "TrangThai": step.status,
                        },
                    }
                )
            if step.snapshot:
                found.append(
                    {
                        "event_id": f"{SOURCE}-{self.code}-s{index:02d}",
                        "type": "dossier.snapshot",
                        "source": SOURCE,
                        "emitted_at": stamp,
                        "data": self.snapshot_data(step),
                    }
                )
        return found

    def facts(self) -> DossierFacts | None:
        """What the reconciler will see, computed as ingest computes it (seconds, due dates)."""
        if not self.steps:
            return None
        last = next(s for s in reversed(self.steps) if s.snapshot)
        data = self.snapshot_data(last)
        assert last.emitted_at is not None, "settle() first"
        moments = [s.at for s in self.steps if s.progress]
        activity = max([*moments, last.emitted_at])
        return DossierFacts(
            code=self.code or "demo",
            status=data["TrangThaiHoSo"],
            due_at=effective_due_at(data),
            finished_at=optional_thoi_diem(data, "NgayKetThucXuLy"),
            returned_at=optional_thoi_diem(data, "NgayTra"),
            last_activity_at=activity,
        )

    def report_document(self) -> dict[str, Any] | None:
        """The desk's report as contract §2 shapes it (``POST /api/v1/field-reports``)."""
        if self.report is None:
            return None
        document = {
            "report_id": self.report.report_id,
            "dossier_code": self.code,
            "kind": self.report.kind,
            "occurred_at": self.report.occurred_at.astimezone(VN_TZ).isoformat(),
            "officer": self.report.officer,
            "unit_code": self.report_unit,
        }
        if self.report_note:
            document["note"] = self.report_note
        return document


def _department(unit: DemoUnit) -> str:
    if unit.department:
        return unit.department
    successor = _UNIT_BY_CODE.get(unit.replaced_by or "")
    return successor.department if successor else unit.name


# ---- drawing --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoData:
    units: tuple[DemoUnit, ...]
    officers: list[DemoOfficer]
    plans: list[DossierPlan]  # known to the system (ordered as they will be sent)
    desk_only: list[DossierPlan]  # NOT_IN_SYSTEM: reports of dossiers the system never sent
    planted: dict[str, int]
    first_day: date
    last_day: date


class _Drawer:
    """Draws plans at ``now`` with one seeded generator (every draw in a fixed order)."""

    def __init__(
        self,
        rng: random.Random,
        *,
        now: datetime,
        calendar: WorkingCalendar,
        settings: RuleSettings,
        first_day: date,
    ) -> None:
        self.rng = rng
        self.now = now.replace(microsecond=0)
        self.cal = calendar
        self.settings = settings
        self.period_start = datetime.combine(first_day, time(0), tzinfo=VN_TZ)
        self.staff: dict[tuple[str, str], list[str]] = {}
        for officer in officers():
            self.staff.setdefault((officer.unit_code, officer.role), []).append(officer.account)
        self.report_seq = 0

    # -- time helpers
    def add(self, start: datetime, hours: float) -> datetime:
        moment = self.cal.add_working_time(start, timedelta(hours=hours))
        return moment.astimezone(VN_TZ).replace(microsecond=0)

    def between(self, start: datetime, end: datetime) -> datetime | None:
        """A moment of office time in [start, end], uniformly over office time."""
        span = self.cal.working_time_between(start, end)
        if span <= timedelta(0):
            return None
        moment = self.add(start, span.total_seconds() / 3600 * self.rng.random())
        return min(moment, end)

    def uniform(self, low: float, high: float) -> float:
        return self.rng.uniform(low, high)

    def chance(self, probability: float) -> bool:
        return self.rng.random() < probability

    # -- who
    def answering(self, unit: DemoUnit) -> str:
        return unit.replaced_by or unit.code

    def officer(self, unit: DemoUnit, role: str) -> str:
        return self.rng.choice(self.staff[(self.answering(unit), role)])

    def applicant(self) -> str:
        rng = self.rng
        return f"{rng.choice(_FAMILY)} {rng.choice(_MIDDLE)} {rng.choice(_GIVEN)}"

    def pick_unit(self, units: list[DemoUnit]) -> DemoUnit:
        return self.rng.choices(units, weights=[unit.weight for unit in units])[0]

    def pick_procedure(self, unit: DemoUnit, min_days: int = 0) -> Procedure:
        eligible = [p for p in unit.procedures if p.days >= min_days] or list(unit.procedures)
        return self.rng.choices(eligible, weights=[p.weight for p in eligible])[0]

    def report(self, plan: DossierPlan, kind: str, at: datetime, note: str | None = None) -> None:
        self.report_seq += 1
        desk_unit = _UNIT_BY_CODE[self.answering(plan.unit)]
        officer = self.officer(plan.unit, "desk")
        day = at.astimezone(VN_TZ).strftime("%Y%m%d")
        report_id = f"{desk_unit.slug}-mc-{day}-{self.report_seq:04d}"
        plan.report = DeskReport(report_id, kind, at, officer)  # type: ignore[arg-type]
        plan.report_unit = desk_unit.code
        plan.report_note = note

    # -- the shape every dossier starts with
    def start(self, unit: DemoUnit, procedure: Procedure, received: datetime) -> DossierPlan:
        channel = 2 if self.chance(0.52) else (3 if self.chance(0.06) else 1)
        submitted = None
        if channel == 2:
            submitted = (received - timedelta(minutes=self.uniform(15, 900))).replace(microsecond=0)
        plan = DossierPlan(
            unit=unit,
            procedure=procedure,
            channel=channel,
            digitised=1 if self.chance(0.86) else 0,
            applicant=self.applicant(),
            received_at=received,
            due_at=self.add(received, procedure.days * 8),
            submitted_at=submitted,
            steps=[Step(received, 2, self.officer(unit, "desk"), "Tiếp nhận hồ sơ", "Công chức")],
        )
        return plan

    def assign(self, plan: DossierPlan, at: datetime, status: int = 4) -> str:
        handler = self.officer(plan.unit, "handler")
        plan.steps.append(Step(at, status, handler, "Chuyển chuyên viên thẩm định hồ sơ"))
        return handler

    def keep_busy(self, plan: DossierPlan, handler: str) -> None:
        """A recent step, so that an open dossier is not stalled."""
        latest = max(step.at for step in plan.steps)
        if self.cal.working_time_between(latest, self.now) <= _HOUR * 4:
            return
        at = self.add(self.now, -self.uniform(0.5, 4))
        if at > latest + 5 * _MINUTE:
            content = "Đang thẩm định, lấy ý kiến phối hợp"
            plan.steps.append(Step(at, plan.steps[-1].status, handler, content, snapshot=False))

    # -- ordinary dossiers
    def ordinary(self, units: list[DemoUnit]) -> DossierPlan | None:
        unit = self.pick_unit(units)
        procedure = self.pick_procedure(unit)
        received = self.between(self.period_start, self.now - 10 * _MINUTE)
        if received is None:
            return None
        plan = self.start(unit, procedure, received)
        if self.chance(0.03):
            plan.due_at = None  # the vendor sent no NgayHenTra: counted apart in the KPIs
        if plan.channel == 2 and self.chance(0.02):
            return self._awaiting_reception(plan)
        draw = self.rng.random()
        if draw < 0.03:
            return self._refused(plan)
        if draw < 0.05:
            return self._withdrawn(plan)
        if draw < 0.06:
            return self._stopped(plan)
        return self._processed(plan)

    def _awaiting_reception(self, plan: DossierPlan) -> DossierPlan:
        submitted = self.add(self.now, -self.uniform(0.5, 5))
        plan.submitted_at = submitted
        plan.received_at = plan.due_at = None
        plan.channel = 2
        plan.steps = [Step(submitted, 1, "dvcqg", "Nộp hồ sơ trực tuyến", progress=False)]
        return plan

    def _refused(self, plan: DossierPlan) -> DossierPlan | None:
        at = self.add(plan.received_at, self.uniform(0.2, 3))  # type: ignore[arg-type]
        if at > self.now - 5 * _MINUTE:
            return None
        plan.refused_at = at
        content = "Từ chối tiếp nhận: hồ sơ không thuộc thẩm quyền"
        plan.steps.append(Step(at, 3, plan.steps[0].officer, content, "Công chức"))
        return plan

    def _withdrawn(self, plan: DossierPlan) -> DossierPlan | None:
        received = plan.received_at
        assert received is not None
        handler = self.assign(plan, self.add(received, self.uniform(0.3, 2)))
        at = self.between(plan.steps[-1].at + 30 * _MINUTE, self.now - 30 * _MINUTE)
        if at is None:
            return None
        self.report(plan, "withdrawn", at, "Công dân rút hồ sơ tại Bộ phận Một cửa")
        system_at = at + timedelta(minutes=int(self.uniform(5, 60)))
        plan.steps.append(Step(min(system_at, self.now), 7, handler, "Công dân rút hồ sơ"))
        return plan

    def _stopped(self, plan: DossierPlan) -> DossierPlan | None:
        received = plan.received_at
        assert received is not None
        handler = self.assign(plan, self.add(received, self.uniform(0.3, 2)))
        at = self.between(plan.steps[-1].at + 30 * _MINUTE, self.now - 30 * _MINUTE)
        if at is None:
            return None
        plan.steps.append(Step(at, 8, handler, "Dừng xử lý: đối tượng không đủ điều kiện"))
        return plan

    def _processed(self, plan: DossierPlan) -> DossierPlan | None:
        received = plan.received_at
        assert received is not None
        hours = plan.procedure.days * 8
        handler = self.assign(plan, self.add(received, hours * self.uniform(0.05, 0.15)))
        factor = self.uniform(1.05, 1.8) if self.chance(0.08) else self.uniform(0.25, 0.95)
        finished = self.add(received, hours * factor)
        if finished <= self.now - 30 * _MINUTE:
            plan.finished_at = finished
            leader = self.officer(plan.unit, "leader")
            plan.steps.append(Step(finished, 9, leader, "Ký duyệt kết quả", "Lãnh đạo"))
            handover = self.add(finished, self.uniform(0.25, 12))
            if handover <= self.now - 10 * _MINUTE and self.chance(0.94):
                desk = self.officer(plan.unit, "desk")
                plan.returned_at = handover
                plan.steps.append(Step(handover, 10, desk, "Trả kết quả", "Công chức"))
                if self.chance(0.6 if plan.channel == 2 else 0.92):
                    drift = timedelta(minutes=int(self.uniform(-10, 10)))
                    occurred = min(max(handover + drift, finished + _MINUTE), self.now)
                    self.report(plan, "returned", occurred, "Đã trả kết quả cho công dân")
            return plan
        return self._still_open(plan, handler)

    def _still_open(self, plan: DossierPlan, handler: str) -> DossierPlan | None:
        window_hours = self.settings.due_soon_window.total_seconds() / 3600
        due = plan.due_at
        if due is not None and self.cal.working_time_between(self.now, due) <= timedelta(
            hours=window_hours + 2
        ):
            # Late or nearly so: the officer asked for documents or apologised with a new date.
            asked = self.between(plan.steps[-1].at + 5 * _MINUTE, min(due, self.now) - _MINUTE)
            if asked is None:
                return None
            new_due = self.add(self.now, self.uniform(window_hours + 8, window_hours + 40))
            entry = {
                "NgayYeuCau": format_thoi_diem(asked),
                "NgayHenTraTruoc": format_thoi_diem(due),
                "NgayHenTraMoi": format_thoi_diem(new_due),
            }
            if self.chance(0.5):
                entry["LyDo"] = "Bổ sung bản sao giấy tờ còn thiếu"
                plan.reschedules.append(("DanhSachHoSoBoSung", entry))
                plan.steps.append(Step(asked, 5, handler, "Yêu cầu bổ sung giấy tờ"))
                return plan
            entry["LyDo"] = "Chờ ý kiến phối hợp của cơ quan liên quan"
            plan.reschedules.append(("DanhSachXinLoi", entry))
            plan.steps.append(Step(asked, 4, handler, "Gửi văn bản xin lỗi, hẹn lại ngày trả"))
        elif plan.procedure in LAND and self.chance(0.15):
            at = self.between(plan.steps[-1].at + 5 * _MINUTE, self.now - 5 * _MINUTE)
            if at is not None:
                plan.steps.append(Step(at, 6, handler, "Chuyển thông tin thuế, chờ nộp nghĩa vụ"))
        self.keep_busy(plan, handler)
        return plan

    # -- planted dossiers, one kind each
    def planted(self, kind: Kind, index: int, units: list[DemoUnit]) -> DossierPlan | None:
        unit = units[index % len(units)]
        builder: dict[Kind, Callable[[DemoUnit, int], DossierPlan | None]] = {
            Kind.RETURNED_BUT_OPEN: self._returned_but_open,
            Kind.TIME_MISMATCH: self._time_mismatch,
            Kind.STATUS_CONFLICT: self._status_conflict,
            Kind.NOT_IN_SYSTEM: self._not_in_system,
            Kind.OVERDUE_NO_APOLOGY: self._overdue,
            Kind.DUE_SOON: self._due_soon,
            Kind.STALLED: self._stalled,
        }
        plan = builder[kind](unit, index)
        if plan is not None:
            plan.planted = kind
        return plan

    def _received_before(self, unit: DemoUnit, moment: datetime, share: float) -> DossierPlan:
        procedure = self.pick_procedure(unit, min_days=3)
        received = self.add(moment, -procedure.days * 8 * share)
        return self.start(unit, procedure, received)

    def _returned_but_open(self, unit: DemoUnit, index: int) -> DossierPlan | None:
        latest = self.now - self.settings.return_grace - 20 * _MINUTE
        occurred = self.add(latest, -self.uniform(0.25, 12))
        plan = self._received_before(unit, occurred, self.uniform(0.4, 0.9))
        plan.channel = 1  # handed over at the desk
        self.assign(plan, self.add(plan.received_at, 1), 6 if index % 4 == 3 else 4)  # type: ignore[arg-type]
        self.report(plan, "returned", occurred, "Đã trả kết quả trực tiếp cho công dân")
        return plan

    def _time_mismatch(self, unit: DemoUnit, index: int) -> DossierPlan | None:
        offset = self.settings.time_tolerance + 2 * _HOUR  # 6 h with the default tolerance
        latest = self.now - offset - 10 * _MINUTE
        occurred = self.between(self.add(latest, -40), latest)
        if occurred is None:
            return None
        finished = self.add(occurred, -self.uniform(1, 8))
        plan = self._received_before(unit, finished, self.uniform(0.5, 0.9))
        handler = self.assign(plan, self.add(plan.received_at, 1))  # type: ignore[arg-type]
        plan.finished_at = finished
        plan.steps.append(Step(finished, 9, handler, "Hoàn thành xử lý"))
        plan.returned_at = occurred + offset  # typed in later, with the time of typing
        desk = self.officer(unit, "desk")
        plan.steps.append(Step(plan.returned_at, 10, desk, "Trả kết quả", "Công chức"))
        self.report(plan, "returned", occurred, "Đã trả kết quả cho công dân")
        return plan

    def _status_conflict(self, unit: DemoUnit, index: int) -> DossierPlan | None:
        occurred = self.between(self.add(self.now, -60), self.now - 30 * _MINUTE)
        if occurred is None:
            return None
        plan = self._received_before(unit, occurred, self.uniform(0.5, 0.9))
        handler = self.assign(plan, self.add(plan.received_at, 1))  # type: ignore[arg-type]
        if index % 4 == 3:  # the applicant withdrew at the desk, the system says returned
            returned = self.add(occurred, self.uniform(0.5, 4))
            if returned > self.now:
                return None
            plan.finished_at = self.add(occurred, -0.5)
            plan.returned_at = returned
            plan.steps.append(Step(plan.finished_at, 9, handler, "Hoàn thành xử lý"))
            plan.steps.append(Step(returned, 10, handler, "Trả kết quả"))
            self.report(plan, "withdrawn", occurred, "Công dân rút hồ sơ")
            return plan
        stopped = self.add(occurred, -self.uniform(1, 6))
        plan.steps.append(Step(stopped, 8, handler, "Dừng xử lý"))
        self.report(plan, "returned", occurred, "Đã trả kết quả cho công dân")
        return plan

    def _not_in_system(self, unit: DemoUnit, index: int) -> DossierPlan | None:
        latest = self.now - self.settings.return_grace - 20 * _MINUTE
        occurred = self.between(self.add(latest, -60), latest)
        if occurred is None:
            return None
        received = self.add(occurred, -self.uniform(4, 40))
        plan = DossierPlan(
            unit=unit,
            procedure=self.pick_procedure(unit),
            channel=1,
            digitised=0,
            applicant=self.applicant(),
            received_at=received,
            due_at=None,
            steps=[],
        )
        self.report(plan, "returned", occurred, "Hồ sơ giấy, trả kết quả tại Bộ phận Một cửa")
        return plan

    def _overdue(self, unit: DemoUnit, index: int) -> DossierPlan | None:
        due = self.add(self.now, -self.uniform(2, 30))
        if index % 4 == 3:  # apologised once, and the new date has passed too
            first_due = self.add(due, -self.uniform(8, 24))
            plan = self._received_before(unit, first_due, 1)
            plan.due_at = first_due
            handler = self.assign(plan, self.add(plan.received_at, 1))  # type: ignore[arg-type]
            asked = self.add(first_due, -2)
            plan.reschedules.append(
                (
                    "DanhSachXinLoi",
                    {
                        "NgayYeuCau": format_thoi_diem(asked),
                        "NgayHenTraTruoc": format_thoi_diem(first_due),
                        "NgayHenTraMoi": format_thoi_diem(due),
                        "LyDo": "Chờ kết quả đo đạc",
                    },
                )
            )
            plan.steps.append(Step(asked, 4, handler, "Gửi văn bản xin lỗi, hẹn lại ngày trả"))
        else:
            plan = self._received_before(unit, due, 1)
            plan.due_at = due
            handler = self.assign(plan, self.add(plan.received_at, 1))  # type: ignore[arg-type]
        self.keep_busy(plan, handler)
        return plan

    def _due_soon(self, unit: DemoUnit, index: int) -> DossierPlan | None:
        window = self.settings.due_soon_window.total_seconds() / 3600
        due = self.add(self.now, window * self.uniform(0.25, 0.75))  # 4 h with the default
        plan = self._received_before(unit, due, 1)
        plan.due_at = due
        handler = self.assign(plan, self.add(plan.received_at, 0.5))  # type: ignore[arg-type]
        self.keep_busy(plan, handler)
        return plan

    def _stalled(self, unit: DemoUnit, index: int) -> DossierPlan | None:
        stall_hours = self.settings.stall_after.total_seconds() / 3600
        last = self.add(self.now, -(stall_hours + self.uniform(2, 16)))
        procedure = self.pick_procedure(unit, min_days=10)
        received = self.add(last, -self.uniform(1, 8))
        plan = self.start(unit, procedure, received)
        self.assign(plan, last)
        return plan


def _judge(plan: DossierPlan, drawer: _Drawer) -> list[str]:
    plan.settle(drawer.rng, drawer.now)
    facts = plan.facts()
    reports = [plan.report] if plan.report is not None else []
    found = rules.evaluate(
        facts, reports, now=drawer.now, calendar=drawer.cal, settings=drawer.settings
    )
    return [finding.kind.value for finding in found]


def _draw(
    make: Callable[[], DossierPlan | None], drawer: _Drawer, expected: list[str]
) -> DossierPlan:
    for _ in range(MAX_DRAWS):
        plan = make()
        if plan is not None and _judge(plan, drawer) == expected:
            return plan
    raise RuntimeError(f"could not draw a demo dossier showing {expected or 'nothing'}")


def _codes(plans: list[DossierPlan]) -> None:
    """``{agency}-{yyMMdd}-{NNNN}``, the sequence per agency and day (in drawing order)."""
    sequence: dict[tuple[str, date], int] = {}
    for plan in plans:
        key = (plan.unit.code, plan.day)
        sequence[key] = sequence.get(key, 0) + 1
        plan.code = f"{plan.unit.code}-{plan.day:%y%m%d}-{sequence[key]:04d}"


def generate(
    *,
    now: datetime,
    seed: int,
    dossiers: int,
    calendar: WorkingCalendar,
    settings: RuleSettings,
) -> DemoData:
    """``dossiers`` dossiers known to the system (planted ones included) plus desk-only reports."""
    if not MIN_DOSSIERS <= dossiers <= MAX_DOSSIERS:
        raise ValueError(f"dossiers must be between {MIN_DOSSIERS} and {MAX_DOSSIERS}")
    rng = random.Random(f"doisoat-demo:{seed}")
    last_day = now.astimezone(VN_TZ).date()
    first_day = last_day - timedelta(days=PERIOD_DAYS - 1)
    drawer = _Drawer(rng, now=now, calendar=calendar, settings=settings, first_day=first_day)
    units = current_units()
    deciding = [unit for unit in UNITS if unit.procedures]
    planted = {kind.value: rng.randint(*PLANTED_PER_KIND) for kind in KIND_ORDER}

    slots: list[Kind | None] = [kind for kind in KIND_ORDER for _ in range(planted[kind.value])]
    in_system = sum(1 for slot in slots if slot is not Kind.NOT_IN_SYSTEM)
    slots += [None] * (dossiers - in_system)
    rng.shuffle(slots)

    plans: list[DossierPlan] = []
    desk_only: list[DossierPlan] = []
    seen: dict[Kind, int] = {}
    for slot in slots:
        if slot is None:
            plans.append(_draw(lambda: drawer.ordinary(deciding), drawer, []))
            continue
        index = seen.get(slot, 0)
        seen[slot] = index + 1

        def make(kind: Kind = slot, position: int = index) -> DossierPlan | None:
            return drawer.planted(kind, position, units)

        plan = _draw(make, drawer, [slot.value])
        (desk_only if slot is Kind.NOT_IN_SYSTEM else plans).append(plan)
    _codes([*plans, *desk_only])
    return DemoData(UNITS, officers(), plans, desk_only, planted, first_day, last_day)


def chunks(items: list[DossierPlan], size: int) -> Iterator[list[DossierPlan]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
