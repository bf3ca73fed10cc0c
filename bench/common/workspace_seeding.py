"""The workspace benchmark's province: a hundred units with their officers, a year of
dossiers, desk reports, discrepancies of the seven kinds with their history, and the events of
the dossiers that need them, loaded with COPY."""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common.console import say
from bench.common.database import autocommit
from services.app.demo.catalogue import BUSINESS_AND_BUILDING as BUSINESS
from services.app.demo.catalogue import COMMUNE, FAMILY, GIVEN, LAND, MIDDLE, Procedure
from shared.clock import VN_TZ, system_clock
from shared.dvcqg import format_thoi_diem
from shared.events import PROGRESS, SNAPSHOT
from tests.support.postgres import asyncpg_dsn

PROVINCE, PROVINCE_LEADER = "000.00.00.H08", "lanhdao.tinh"
UNITS, RICH, SEED_BATCH = 100, 10, 50_000
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
YEAR = 365 * DAY
GRACE = 2 * HOUR
DEPARTMENTS = (
    *("Sở Tư pháp", "Sở Xây dựng", "Sở Tài chính", "Sở Công Thương", "Sở Y tế", "Sở Nội vụ"),
    *("Sở Nông nghiệp và Môi trường", "Sở Giáo dục và Đào tạo", "Sở Khoa học và Công nghệ"),
    *("Sở Văn hóa, Thể thao và Du lịch", "Sở Dân tộc và Tôn giáo", "Công an tỉnh"),
    *("Ban Quản lý các khu công nghiệp", "Bảo hiểm xã hội tỉnh"),
)
# kind, severity, share of the unresolved ones, age of the dossier when found (days)
KINDS: tuple[tuple[str, str, float, tuple[int, int]], ...] = (
    ("RETURNED_BUT_OPEN", "critical", 0.18, (3, 60)),
    ("OVERDUE_NO_APOLOGY", "critical", 0.25, (10, 120)),
    ("STALLED", "warning", 0.20, (16, 90)),
    ("DUE_SOON", "info", 0.15, (1, 20)),
    ("TIME_MISMATCH", "warning", 0.08, (15, 200)),
    ("STATUS_CONFLICT", "warning", 0.07, (3, 60)),
    ("NOT_IN_SYSTEM", "critical", 0.07, (1, 30)),
)
SEVERITY = {kind: severity for kind, severity, _, _ in KINDS}
RESOLVED_KINDS = ("OVERDUE_NO_APOLOGY", "STALLED", "DUE_SOON", "RETURNED_BUT_OPEN", "TIME_MISMATCH")
STEP_TEXTS = (
    *("Tiếp nhận hồ sơ", "Chuyển phòng chuyên môn", "Thẩm định hồ sơ", "Kiểm tra thực địa"),
    *("Trình lãnh đạo ký", "Ký duyệt kết quả", "Chuyển Bộ phận Một cửa trả kết quả"),
)
# COPY order: a table's rows before the rows that refer to them.
COLUMNS: dict[str, list[str]] = {
    table: columns.split()
    for table, columns in {
        "units": "code name parent_code replaced_by updated_at",
        "officers": "account full_name unit_code role email active updated_at",
        "dossiers": "code status unit_code procedure_code procedure_name field_name channel "
        "digitised received_at due_at finished_at returned_at refused_at snapshot "
        "snapshot_emitted_at snapshot_event_id latest_step_at responsible",
        "dossier_status_seen": "dossier_code status first_emitted_at",
        "field_reports": "report_id dossier_code kind occurred_at officer unit_code channel "
        "received_at",
        "events": "event_id type source emitted_at dossier_code data ingested_at",
        "progress_steps": "event_id dossier_code step_at emitted_at officer status title "
        "department content started_at deadline_at",
        "discrepancies": "id dossier_code kind severity status unit_code field_name responsible "
        "reporter since opened_at acknowledged_at acknowledged_by resolved_at resolution details "
        "updated_at",
        "discrepancy_history": "discrepancy_id at action actor severity note",
        "notifications": "discrepancy_id purpose severity recipient channel address unit_code "
        "content status not_before attempts created_at sent_at",
    }.items()
}
Row = tuple[Any, ...]
Span = tuple[datetime, datetime]
Holder = tuple[str, str]  # a discrepancy's dossier code and responsible officer
When = tuple[datetime, datetime | None]  # since, resolved


@dataclass(frozen=True, slots=True)
class UnitPlan:
    code: str
    name: str
    procedures: tuple[Procedure, ...]
    desk: str
    leader: str
    handlers: tuple[str, ...]
    old_code: str | None  # a merged code that its dossiers older than six months still carry


def plan_units() -> tuple[list[UnitPlan], list[float]]:
    """The units (weights 1/(i+1)^0.8: the first takes 12 % of the dossiers) and their weights."""
    weights = [1 / (i + 1) ** 0.8 for i in range(UNITS)]
    names = ["Văn phòng đăng ký đất đai tỉnh", *DEPARTMENTS]
    names += [f"UBND xã số {k}" for k in range(1, UNITS - len(names) + 1)]
    units, total = [], sum(weights)
    for i, weight in enumerate(weights):
        tag, departments = f"dv{i:03d}", len(DEPARTMENTS)
        procedures = LAND if i % 5 == 0 else BUSINESS if i <= departments else COMMUNE
        handlers = tuple(f"chuyenvien{k:02d}.{tag}" for k in range(2 + round(300 * weight / total)))
        code = f"000.{20 + i // 10:02d}.{10 + i % 10:02d}.H08"
        old = f"000.9{i - 40}.30.H08" if 40 <= i < 43 else None
        units.append(
            UnitPlan(code, names[i], procedures, f"motcua.{tag}", f"lanhdao.{tag}", handlers, old)
        )
    return units, weights


class Seeder:
    """Draws the province row by row and COPYs it in batches (see the module's docstring)."""

    def __init__(self, rng: random.Random, now: datetime, args: argparse.Namespace) -> None:
        self.rng, self.now, self.total = rng, now, int(args.dossiers)
        self.units, weights = plan_units()
        cumulative = [sum(weights[: i + 1]) for i in range(UNITS)]
        self.unit_of = bytearray(rng.choices(range(UNITS), cum_weights=cumulative, k=self.total))
        self.kind_of = bytearray(self.total)  # 1 + index in KINDS; 0: nothing unresolved
        self.resolved_of = bytearray(self.total)  # resolved discrepancies of the dossier
        self._plant(args.discrepancies, args.resolved)
        rich = (n for n in range(self.total) if self.kind_of[n] == 1 and self.unit_of[n] == 0)
        self.rich = {n for n, _ in zip(rich, range(RICH), strict=False)}
        first_day = (now - YEAR).astimezone(VN_TZ)
        self.first_day = first_day.replace(hour=0, minute=0, second=0, microsecond=0)
        self.rows: dict[str, list[Row]] = {table: [] for table in COLUMNS}
        self.next_id = 1
        self.held: Counter[str] = Counter()  # unresolved discrepancies per responsible
        self.rich_codes: list[str] = []
        self.counts: Counter[str] = Counter()
        self.seconds = 0.0

    def _number_at(self, days_ago: float) -> int:
        return max(0, min(self.total, int(self.total * (1 - days_ago / 365))))

    def _plant(self, unresolved: int, resolved: int) -> None:
        """Which dossier numbers (received in time order) get which discrepancies."""
        for index, (_, _, share, (young, old)) in enumerate(KINDS, start=1):
            low, high = self._number_at(old), self._number_at(young)
            wanted, tries = round(unresolved * share), 0
            while wanted:
                number, tries = self.rng.randrange(low, high), tries + 1
                if not self.kind_of[number]:
                    self.kind_of[number], wanted = index, wanted - 1
                elif tries > 100 * unresolved:
                    raise SystemExit("too many discrepancies for so few dossiers")
        for _ in range(resolved):
            number = self.rng.randrange(self._number_at(14))
            self.resolved_of[number] = min(3, self.resolved_of[number] + 1)

    def directory(self) -> None:
        stamp, rows = self.now, self.rows
        rows["units"].append((PROVINCE, "UBND tỉnh Lâm Đồng", None, None, stamp))
        rows["officers"].append((PROVINCE_LEADER, self.person(), PROVINCE, "leader", None))
        for unit in self.units:
            rows["units"].append((unit.code, unit.name, PROVINCE, None, stamp))
            if unit.old_code:
                rows["units"].append(
                    (unit.old_code, f"{unit.name} (cũ)", PROVINCE, unit.code, stamp)
                )
            staff = [(unit.desk, "desk"), (unit.leader, "leader")]
            staff += [(account, "handler") for account in unit.handlers]
            rows["officers"] += [(a, self.person(), unit.code, role, None) for a, role in staff]
        rows["officers"] = [
            (account, name, unit, role, f"{account}@example.gov.vn", True, stamp)
            for account, name, unit, role, _ in rows["officers"]
        ]

    def person(self) -> str:
        rng = self.rng
        return f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"

    def dossier(self, number: int) -> None:
        """One dossier, shaped to its planted discrepancy, with what hangs off it."""
        rng, now, rows = self.rng, self.now, self.rows
        unit = self.units[self.unit_of[number]]
        day = self.first_day + timedelta(days=number * 365 // self.total)
        received = min(day + timedelta(hours=7.5 + 9 * rng.random()), now - 5 * MINUTE)
        code = f"{unit.code}-{received.astimezone(VN_TZ):%y%m%d}-{number:07d}"
        old = unit.old_code is not None and now - received > 180 * DAY and number % 3 == 0
        source_unit = unit.old_code if old and unit.old_code else unit.code
        procedure = unit.procedures[rng.randrange(len(unit.procedures))]
        allowed = timedelta(days=1.4 * procedure.days)
        due = received + allowed
        handler = unit.handlers[rng.randrange(len(unit.handlers))]
        finished = returned = refused = seen = None
        draw = rng.random()
        if draw < 0.02:
            status, refused = 3, min(received + 4 * HOUR, now)
        elif draw < 0.035:
            status, seen = (7 if draw < 0.03 else 8), min(received + 2 * DAY, now)
        else:
            finish = received + allowed * (0.25 + 0.85 * rng.random())
            if finish > now:
                status = 2 if now - received < 4 * HOUR else 5 if rng.random() < 0.06 else 4
            elif rng.random() < 0.95:
                status, finished, returned = 10, finish, min(finish + rng.random() * DAY, now)
            else:
                status, finished, seen = 9, finish, finish
        activity = returned or finished or refused or seen or received + (now - received) / 2
        kind = KINDS[self.kind_of[number] - 1][0] if self.kind_of[number] else None
        report: tuple[str, datetime] | None = None
        since = now
        if kind is not None and kind != "NOT_IN_SYSTEM":
            status, finished, returned, refused, seen = 4, None, None, None, None
            activity = now - 2 * DAY * rng.random()
        if kind in ("RETURNED_BUT_OPEN", "STATUS_CONFLICT"):
            moment = received + (now - received - 3 * HOUR) * (0.3 + 0.6 * rng.random())
            report = ("returned" if kind == "RETURNED_BUT_OPEN" else "withdrawn", moment)
            since, activity = moment + GRACE, max(received, moment - 2 * HOUR)
        elif kind == "OVERDUE_NO_APOLOGY":
            due = since = received + (now - received) * (0.3 + 0.6 * rng.random())
        elif kind == "STALLED":
            activity = now - timedelta(days=4 + 10 * rng.random())
            since, due = activity + 5 * DAY, now + timedelta(days=1 + 9 * rng.random())
        elif kind == "DUE_SOON":
            due = now + timedelta(hours=1 + 7 * rng.random())
            since = max(received, due - 8 * HOUR)
        elif kind == "TIME_MISMATCH":
            status, finished = 10, received + allowed / 2
            returned = since = activity = finished + DAY
            report = ("returned", returned - timedelta(hours=6 + 42 * rng.random()))
        elif status == 10 and rng.random() < 0.4:
            report = ("returned", returned or now)
        snapshot = {
            **{"MaHoSo": code, "MaTTHC": procedure.code, "TenTTHC": procedure.name},
            **{"TenLinhVuc": procedure.field, "ChuHoSo": self.person(), "TrangThaiHoSo": status},
            **{"KenhThucHien": 1 + (rng.random() < 0.55), "DonViXuLy": source_unit},
            **{"HoSoCoThanhPhanSoHoa": int(rng.random() < 0.85), "NoiNopHoSo": 1},
        }
        stamps: list[tuple[str, datetime | None]] = [("NgayNopHoSo", received - HOUR)]
        stamps += [("NgayTiepNhan", received), ("NgayHenTra", due)]
        stamps += [("NgayKetThucXuLy", finished), ("NgayTra", returned), ("NgayTuChoi", refused)]
        snapshot |= {name: format_thoi_diem(at) for name, at in stamps if at is not None}
        rows["dossiers"].append(
            (
                *(code, status, source_unit, procedure.code, procedure.name, procedure.field),
                *(snapshot["KenhThucHien"], bool(snapshot["HoSoCoThanhPhanSoHoa"]), received),
                *(due, finished, returned, refused, orjson.dumps(snapshot).decode()),
                *(activity, f"s-{code}", activity - 10 * MINUTE, handler),
            )
        )
        if seen is not None:
            rows["dossier_status_seen"].append((code, status, seen))
        if report is not None:
            self.report(f"r{number}", code, unit, *report)
        if kind is not None or number in self.rich:
            self.story(unit, snapshot, (received, activity), number in self.rich)
        if kind == "NOT_IN_SYSTEM":  # the desk's report of a dossier the system never sent
            moment = now - timedelta(hours=3 + 400 * rng.random())
            code = f"{unit.code}-{moment.astimezone(VN_TZ):%y%m%d}-M{number:07d}"
            self.report(f"m{number}", code, unit, "returned", moment)
            since = moment + GRACE
        if kind is not None:
            self.discrepancy(unit, (code, handler), procedure.field, kind, (since, None))
        for _ in range(self.resolved_of[number] + 3 * (number in self.rich)):
            opened = received + (min(now, received + 20 * DAY) - received) * rng.random()
            resolved = min(now, opened + timedelta(hours=1 + 240 * rng.random()))
            resolved_kind = RESOLVED_KINDS[rng.randrange(len(RESOLVED_KINDS))]
            self.discrepancy(
                unit, (code, handler), procedure.field, resolved_kind, (opened, resolved)
            )

    def report(self, ident: str, code: str, unit: UnitPlan, kind: str, at: datetime) -> None:
        moment = at.replace(second=0, microsecond=0)
        self.rows["field_reports"].append(
            (ident, code, kind, moment, unit.desk, unit.code, "web", moment + MINUTE)
        )

    def story(self, unit: UnitPlan, snapshot: dict[str, Any], when: Span, rich: bool) -> None:
        """Snapshots and progress steps between reception and the last activity."""
        rng, events, steps = self.rng, self.rows["events"], self.rows["progress_steps"]
        code, (received, until) = snapshot["MaHoSo"], when
        span = max(until - received, HOUR)
        moments = sorted(received + span * rng.random() for _ in range(15 if rich else 3))
        for index, at in enumerate(moments):
            officer = unit.handlers[rng.randrange(len(unit.handlers))]
            text = STEP_TEXTS[min(index, len(STEP_TEXTS) - 1)]
            data = {
                **{"MaHoSo": code, "NguoiXuLy": officer, "ChucDanh": "Chuyên viên"},
                **{"ThoiDiemXuLy": format_thoi_diem(at), "PhongBanXuLy": unit.name},
                **{"NoiDungXuLy": text, "TrangThai": 4},
            }
            event_id = f"{code}-p{index:02d}"
            emitted = at + MINUTE
            document = orjson.dumps(data).decode()
            events.append((event_id, PROGRESS, "motcua", emitted, code, document, emitted))
            step = (event_id, code, at, emitted, officer, 4, "Chuyên viên", unit.name, text)
            steps.append((*step, at, at + DAY))
        count = 8 if rich else 2
        for index in range(count):
            at = received + span * index / count + MINUTE
            status = 2 if index == 0 else snapshot["TrangThaiHoSo"] if index == count - 1 else 4
            data = {**snapshot, "TrangThaiHoSo": status}
            if rich and index % 3 == 2:  # the due date moved (a request for documents)
                data["NgayHenTra"] = format_thoi_diem(received + timedelta(days=5 + index))
            document = orjson.dumps(data).decode()
            events.append((f"{code}-s{index:02d}", SNAPSHOT, "motcua", at, code, document, at))
        if rich:
            self.rich_codes.append(code)
            self.report(f"w{code}", code, unit, "withdrawn", received + span / 3)

    def discrepancy(
        self, unit: UnitPlan, holder: Holder, field_name: str, kind: str, when: When
    ) -> None:
        """One discrepancy (keeping its dossier's field, as the reconciler does), its history
        and the notifications it caused."""
        rng, now, (code, responsible), (since, resolved) = self.rng, self.now, holder, when
        ident, self.next_id = self.next_id, self.next_id + 1
        severity = SEVERITY[kind]
        opened = min(since + timedelta(minutes=1 + 30 * rng.random()), resolved or now)
        acknowledged = None
        if resolved is None:
            status = "acknowledged" if rng.random() < 0.3 else "open"
            self.held[responsible] += 1
        else:
            status = "resolved"
        if status == "acknowledged" or (resolved is not None and rng.random() < 0.4):
            acknowledged = min(opened + timedelta(minutes=10 + 600 * rng.random()), resolved or now)
        self.counts[status] += 1
        resolution = "Hệ thống đã cập nhật theo thực tế" if resolved else None
        details = orjson.dumps({"since": since.isoformat(), "unit": unit.code}).decode()
        reporter = unit.desk if kind in ("RETURNED_BUT_OPEN", "NOT_IN_SYSTEM") else None
        self.rows["discrepancies"].append(
            (
                *(ident, code, kind, severity, status, unit.code, field_name, responsible),
                *(reporter, since),
                *(opened, acknowledged, responsible if acknowledged else None, resolved),
                *(resolution, details, resolved or acknowledged or opened),
            )
        )
        history = self.rows["discrepancy_history"]
        history.append((ident, opened, "opened", None, severity, None))
        if acknowledged is not None:
            note = "Đã liên hệ chuyên viên xử lý"
            history.append((ident, acknowledged, "acknowledged", responsible, severity, note))
        if resolved is not None:
            history.append((ident, resolved, "resolved", None, severity, resolution))
        told = [("opened", responsible, opened)]
        if resolved is None and severity == "critical" and rng.random() < 0.3:
            told.append(("escalation", unit.leader, min(opened + 4 * HOUR, now)))
        if resolved is not None and rng.random() < 0.5:
            told.append(("resolved", responsible, resolved))
        for purpose, recipient, at in told:
            sent = min(at + MINUTE, now)
            content = orjson.dumps({"dossier_code": code, "kind": kind}).decode()
            self.rows["notifications"].append(
                (
                    *(ident, purpose, severity, recipient, "email", f"{recipient}@example.gov.vn"),
                    *(unit.code, content, "sent", at, 1, at, sent),
                )
            )

    async def flush(self, connection: asyncpg.Connection) -> None:
        for table, rows in self.rows.items():
            if rows:
                await connection.copy_records_to_table(table, records=rows, columns=COLUMNS[table])
                self.counts[table] += len(rows)
                rows.clear()


async def seed(db_url: str, engine: AsyncEngine, args: argparse.Namespace) -> Seeder:
    started = time.perf_counter()
    seeder = Seeder(random.Random(args.seed), system_clock(), args)
    connection = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        async with connection.transaction():
            seeder.directory()
            for number in range(args.dossiers):
                seeder.dossier(number)
                if (number + 1) % SEED_BATCH == 0:
                    await seeder.flush(connection)
            await seeder.flush(connection)
            await connection.execute(
                "SELECT setval(pg_get_serial_sequence('discrepancies', 'id'), max(id)) "
                "FROM discrepancies"
            )
    finally:
        await connection.close()
    say(f"  COPY done in {time.perf_counter() - started:.0f} s; VACUUM (ANALYZE) …")
    await autocommit(engine, "VACUUM (ANALYZE)")  # autovacuum's steady state, hint bits set
    seeder.seconds = time.perf_counter() - started
    return seeder
