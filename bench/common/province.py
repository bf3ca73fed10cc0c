"""The lateness benchmark's world: one province's year of dossiers, with their progress steps.

A province (``000.00.00.H08``) and ``units`` units under it (sizes skewed; every fifth a land
registration office handling the land procedures, the others department or commune procedures
of the demo catalogue), a desk officer, a leader and 3–8 handlers each. ``total`` dossiers are
received in office hours over the last 365 days, evenly over the working days, so a month holds
about ``total`` × 21 / 250. Each is due its procedure's working days after intake (the
calendar's arithmetic), and then:

- late with a probability per field (``land_late`` for Đất đai, ``other_late`` elsewhere): of
  those, 30 % get an explained extension they then meet (an apology or a supplement request
  whose ``NgayHenTraMoi`` is after the end: on time by the effective due date), 15 % an apology
  whose new date is missed too (half of these asked after the due date: a late apology), the
  rest nothing; the others end between 20 % and 95 % of their allowance;
- ended before now: 85 % returned (10, ``NgayTra`` within a day of ``NgayKetThucXuLy``), 15 %
  finished and waiting at the desk (9); 1 % refused at intake (3); still open otherwise (4);
- 4 progress steps (desk intake, the handler's appraisal, the leader's signature, the desk's
  hand-over), a fifth waiting on the applicant (5) in 15 % of the late ones; each with
  ``NgayKetThucTheoQuyDinh`` at a share of the allowance, except in 20 % of the dossiers whose
  system sends none; a late dossier overruns its handler's and its leader's allowances; only
  the steps begun by now.

Every step has its event row (the foreign key); the events' ``data`` is ``{}`` (nothing on the
lateness path reads it). The snapshot document is the DVCQG payload ingest stores.
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any

import asyncpg
import orjson

from bench.common.seeding import NO_MARKS, Copier, snapshot_document
from services.app.demo.catalogue import BUSINESS_AND_BUILDING, COMMUNE, LAND, Procedure
from shared.calendar import WorkingCalendar
from shared.clock import VN_TZ
from tests.support.postgres import asyncpg_dsn

PROVINCE = "000.00.00.H08"
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Võ", "Đặng", "Bùi", "Đỗ")
GIVEN = ("An", "Bình", "Cường", "Dũng", "Hà", "Hải", "Hạnh", "Hùng", "Linh", "Mai", "Nam", "Thảo")
STEPS = (
    ("Tiếp nhận hồ sơ", "Bộ phận Một cửa"),
    ("Thẩm định hồ sơ", "Phòng chuyên môn"),
    ("Trình lãnh đạo ký duyệt", "Lãnh đạo"),
    ("Trả kết quả cho công dân", "Bộ phận Một cửa"),
)
WAIT_STEP = ("Yêu cầu bổ sung giấy tờ", "Phòng chuyên môn")
# Office minutes of a day: 07:00–11:30 and 13:30–17:00 (the default calendar's hours).
MORNING_MINUTES = 270


@dataclass(frozen=True, slots=True)
class UnitPlan:
    code: str
    name: str
    procedures: tuple[Procedure, ...]
    desk: str
    leader: str
    handlers: tuple[str, ...]


@dataclass
class Province:
    """What was seeded, and the counts a report prints."""

    now: datetime
    units: list[UnitPlan]
    first_day: date
    counts: dict[str, int] = field(default_factory=dict)
    late_by_month: dict[str, int] = field(default_factory=dict)  # "2026-11": late dossiers
    received_by_month: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def plan_units(count: int) -> tuple[list[UnitPlan], list[float]]:
    """The units and their weights (1/(i+1)^0.5: the largest about 8× the smallest)."""
    units = []
    for i in range(count):
        tag = f"dv{i:03d}"
        procedures: tuple[Procedure, ...]
        if i % 5 == 0:
            name, procedures = f"Chi nhánh Văn phòng đăng ký đất đai số {i // 5 + 1}", LAND
        elif i < 20:
            name, procedures = f"Sở chuyên ngành số {i}", BUSINESS_AND_BUILDING
        else:
            name, procedures = f"UBND xã số {i}", COMMUNE
        handlers = tuple(f"chuyenvien{k:02d}.{tag}" for k in range(3 + i % 6))
        code = f"000.{20 + i // 10:02d}.{10 + i % 10:02d}.H08"
        units.append(UnitPlan(code, name, procedures, f"motcua.{tag}", f"lanhdao.{tag}", handlers))
    return units, [1 / (i + 1) ** 0.5 for i in range(count)]


def _office_moment(day: date, minute: int) -> datetime:
    """``minute`` (0–479) of the office hours of ``day``, in UTC."""
    at = (
        clock_time(7 + minute // 60, minute % 60)
        if minute < MORNING_MINUTES
        else clock_time(13 + (minute - MORNING_MINUTES + 30) // 60, (minute - 240) % 60)
    )
    return datetime.combine(day, at, tzinfo=VN_TZ).astimezone(UTC)


class ProvinceSeeder:
    """Draws the province dossier by dossier and hands the rows to a :class:`Copier`."""

    def __init__(
        self,
        rng: random.Random,
        calendar: WorkingCalendar,
        *,
        now: datetime,
        units: int,
        land_late: float,
        other_late: float,
    ) -> None:
        self.rng, self.calendar, self.now = rng, calendar, now
        self.units, weights = plan_units(units)
        self._cumulative = list(itertools.accumulate(weights))
        self.late = {True: land_late, False: other_late}
        today = now.astimezone(VN_TZ).date()
        days = (today - timedelta(days=365 - i) for i in range(365))
        self.days = [day for day in days if calendar.is_working_day(day)]
        self.province = Province(now, self.units, self.days[0])
        self._due: dict[tuple[datetime, int], datetime] = {}

    def directory(self, copier: Copier) -> None:
        stamp = self.now
        copier.add("units", (PROVINCE, "UBND tỉnh Lâm Đồng", None, None, stamp))
        copier.add(
            "officers", ("lanhdao.tinh", self.person(), PROVINCE, "leader", None, True, stamp)
        )
        for unit in self.units:
            copier.add("units", (unit.code, unit.name, PROVINCE, None, stamp))
            staff = [(unit.desk, "desk"), (unit.leader, "leader")]
            staff += [(account, "handler") for account in unit.handlers]
            for account, role in staff:
                row = (account, self.person(), unit.code, role, None, True, stamp)
                copier.add("officers", row)

    def person(self) -> str:
        rng = self.rng
        return f"{rng.choice(FAMILY)} {rng.choice(('Văn', 'Thị', 'Minh'))} {rng.choice(GIVEN)}"

    def due_of(self, received: datetime, days: int) -> datetime:
        key = (received, days)
        due = self._due.get(key)
        if due is None:
            due = self._due[key] = self.calendar.add_working_time(received, days * 8 * HOUR)
        return due

    def dossier(self, copier: Copier, number: int, total: int) -> None:
        rng, now = self.rng, self.now
        unit = self.units[rng.choices(range(len(self.units)), cum_weights=self._cumulative)[0]]
        procedure = rng.choices(unit.procedures, weights=[p.weight for p in unit.procedures])[0]
        day = self.days[number * len(self.days) // total]
        received = _office_moment(day, (number * 7919) % 480)
        code = f"{unit.code}-{day:%y%m%d}-{number:07d}"
        promised = due = self.due_of(received, procedure.days)
        allowed = due - received
        land = procedure.field == "Đất đai"
        source: datetime | None = None
        reschedules: dict[str, list[tuple[datetime, datetime, datetime]]] = {}
        late = rng.random() < self.late[land]
        if late:
            end = due + HOUR * (2 + 200 * rng.random() ** 2)
            kind = rng.random()
            if kind < 0.45:  # an apology or a supplement request gave a new date
                asked = received + allowed * 0.8
                if kind >= 0.30 and rng.random() < 0.5:
                    asked = due + (end - due) / 3  # asked only after the due date: late
                new_due = end + 2 * DAY if kind < 0.30 else due + (end - due) / 2
                listed = "DanhSachXinLoi" if kind >= 0.30 or rng.random() < 0.5 else None
                reschedules[listed or "DanhSachHoSoBoSung"] = [(asked, due, new_due)]
                source, due = asked, new_due
        else:
            end = received + allowed * (0.2 + 0.75 * rng.random())
        refused = rng.random() < 0.01
        if refused:
            status, end = 3, received + HOUR
            finished = returned = None
        elif end <= now:
            status = 10 if rng.random() < 0.85 else 9
            finished = end
            returned = end + DAY * rng.random() if status == 10 else None
        else:
            status, finished, returned = 4, None, None
        month = f"{day:%Y-%m}"
        counts = self.province.received_by_month
        counts[month] = counts.get(month, 0) + 1
        if not refused and due < min(end, now):
            self.province.late_by_month[month] = self.province.late_by_month.get(month, 0) + 1
        handler = unit.handlers[number % len(unit.handlers)]
        last_at, last_officer = self.steps(
            copier,
            code,
            (received, min(end, now), end <= now, due if source is None else promised),
            (unit.desk, handler, unit.leader),
            waits=late and rng.random() < 0.15,
            allowances=rng.random() >= 0.2,
        )
        digitised, channel = rng.random() < 0.85, 1 + (rng.random() < 0.55)
        snapshot = snapshot_document(
            code=code,
            status=status,
            unit=unit.code,
            procedure=(procedure.code, procedure.name, procedure.field),
            applicant=self.person(),
            channel=channel,
            digitised=digitised,
            stamps={
                "NgayTiepNhan": received,
                "NgayHenTra": promised,
                "NgayKetThucXuLy": finished,
                "NgayTra": returned,
                "NgayTuChoi": received + HOUR if refused else None,
            },
            reschedules=reschedules,
        )
        seen = min(end, now)
        row: tuple[Any, ...] = (
            *(code, status, unit.code, procedure.code, procedure.name, procedure.field),
            *(channel, digitised, received, due, source, finished, returned),
            *(received + HOUR if refused else None, orjson.dumps(snapshot).decode()),
            *(seen, f"s-{code}", last_at, last_officer),
            *NO_MARKS,
        )
        copier.add("dossiers", row)
        copier.add("dossier_status_seen", (code, status, seen))

    def steps(
        self,
        copier: Copier,
        code: str,
        when: tuple[datetime, datetime, bool, datetime],
        people: tuple[str, str, str],
        *,
        waits: bool,
        allowances: bool,
    ) -> tuple[datetime, str]:
        """The dossier's steps begun by now; returns the last one's moment and officer."""
        received, until, ended, due = when
        desk, handler, leader = people
        span, allowed = until - received, due - received
        plan: list[tuple[tuple[str, str], str, int, datetime, datetime | None]] = [
            (STEPS[0], desk, 2, received, received + allowed * 0.05),
            (STEPS[1], handler, 4, received + span * 0.05, received + allowed * 0.75),
            (STEPS[2], leader, 4, received + span * 0.85, received + allowed * 0.95),
        ]
        if waits:
            plan.insert(2, (WAIT_STEP, handler, 5, received + span * 0.4, None))
        if ended:
            plan.append((STEPS[3], desk, 10, until, due))
        last = (received, desk)
        for index, ((title, department), officer, status, start, deadline) in enumerate(plan):
            if start > self.now:
                break
            event_id = f"p-{code}-{index}"
            emitted = start + 2 * timedelta(minutes=1)
            copier.add(
                "events", (event_id, "dossier.progress", "motcua", emitted, code, "{}", emitted)
            )
            copier.add(
                "progress_steps",
                (
                    *(event_id, code, start, emitted, officer, status, title, department),
                    *(None, start, deadline if allowances else None),
                ),
            )
            last = (start, officer)
        return last


async def seed_province(
    db_url: str,
    total: int,
    rng: random.Random,
    calendar: WorkingCalendar,
    *,
    now: datetime,
    units: int = 60,
    land_late: float = 0.15,
    other_late: float = 0.03,
) -> Province:
    """COPY the province in one transaction (module docstring); the caller runs VACUUM ANALYZE."""
    started = time.perf_counter()
    seeder = ProvinceSeeder(
        rng, calendar, now=now, units=units, land_late=land_late, other_late=other_late
    )
    connection = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        copier = Copier(connection)
        await copier.start()
        async with connection.transaction():
            seeder.directory(copier)
            for number in range(total):
                seeder.dossier(copier, number, total)
                if copier.full():
                    await copier.flush()
            await copier.flush()
    finally:
        await connection.close()
    seeder.province.counts = dict(copier.copied)
    seeder.province.seconds = time.perf_counter() - started
    return seeder.province
