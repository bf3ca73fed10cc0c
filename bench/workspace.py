"""Workspace benchmark: the officers' pages over a province of a million dossiers, on PostgreSQL.

1. a fresh migrated database seeded with COPY, then ``VACUUM (ANALYZE)``: a province and 100
   units under it (sizes skewed; three merged old codes), a desk officer, handlers and a leader
   per unit and a province leader; ``--dossiers`` dossiers received over the last 12 months
   (outcomes, due dates, fields, procedures, snapshots), desk reports for 40 % of the returned
   ones, ``--discrepancies`` unresolved discrepancies of seven kinds (their dossiers' facts
   shaped to match) and ``--resolved`` resolved ones, with history and notifications; events
   and progress steps for every dossier with an unresolved discrepancy, long stories for a few;
2. ``doisoat api`` as its own process; officers sign in as a browser does (a link made with
   ``services.workspace.sessions``, then its POST; the cookie kept);
3. per page ``--warm-up`` untimed then ``--requests`` timed requests, one at a time: median,
   p95, max, a verdict (pages p95 ≤ 300 ms, badges p95 ≤ 50 ms), then ``badge_counts`` alone;
4. for a missed target (``--explain always``: every page) the page's reads in this process,
   each statement EXPLAIN ANALYZEd, the slowest plan printed;
5. the server stopped and the database dropped (unless ``--keep-db``), also on Ctrl-C/SIGTERM.

Run from the repository root: ``.venv/bin/python bench/workspace.py --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

if __package__ in (None, ""):  # run as a script (``python bench/workspace.py``): find ``tests``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common.console import host_line, load_average, say, sigterm_as_interrupt
from bench.common.database import autocommit, postgres_summary, run_on_fresh_database
from bench.common.explain import explain_path, shortened
from bench.common.figures import Report, counts_text, mib, quantile, target_verdict
from bench.common.sampling import ProcessSampler
from services.alerts.service import notifications_of_dossier
from services.app.demo.catalogue import BUSINESS_AND_BUILDING as BUSINESS
from services.app.demo.catalogue import COMMUNE, FAMILY, GIVEN, LAND, MIDDLE, Procedure
from services.reconciler import queries
from services.reconciler.config import ReconcilerSettings
from services.reconciler.dossiers.service import story_of
from services.reconciler.kpis import review, stored
from services.reconciler.kpis.formulas import IsoWeek, month_so_far
from services.reconciler.kpis.service import Scope
from services.workspace import sessions
from services.workspace.config import WorkspaceSettings
from services.workspace.pages import board_lateness as lateness
from shared.clock import VN_TZ, system_clock
from shared.db import create_engine, unit_of_work
from shared.directory import Directory, load_directory
from shared.dvcqg import format_thoi_diem
from shared.events import PROGRESS, SNAPSHOT
from tests.support.postgres import asyncpg_dsn
from tests.support.processes import ServiceProcess, start_service

PAGE_TARGET, BADGE_TARGET = 0.300, 0.050
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


# ------------------------------------------------------------------------------ measuring

Work = Callable[[AsyncConnection], Awaitable[None]]


@dataclass
class Probe:
    """One page (or the badges) as one officer asks for it, and its target."""

    name: str
    account: str
    paths: Sequence[str]  # taken in turn
    target: float
    work: Work  # the same reads in this process, for the diagnosis
    times: list[float] = field(default_factory=list)
    size: int = 0  # bytes of the last answer

    @property
    def missed(self) -> bool:
        return not self.times or quantile(self.times, 0.95) > self.target


def ms(seconds: float) -> str:
    return f"{1000 * seconds:,.0f} ms" if seconds >= 0.0095 else f"{1000 * seconds:.1f} ms"


async def signed_in(base_url: str, engine: AsyncEngine, account: str) -> httpx.AsyncClient:
    """A browser of ``account``: a sign-in link opened, its button pressed, the cookie kept."""
    async with unit_of_work(engine, "bench_sign_in") as connection:
        token = await sessions.create_link(
            connection, account, now=system_clock(), requested_from="bench"
        )
    client = httpx.AsyncClient(base_url=base_url, timeout=300)
    (await client.get(f"/sign-in/{token}")).raise_for_status()
    form = {"csrf_token": client.cookies.get("doisoat_form") or ""}
    answer = await client.post(f"/sign-in/{token}", data=form)
    if answer.status_code != 303 or not client.cookies.get("doisoat_session"):
        raise RuntimeError(f"sign-in of {account} failed: {answer.status_code} {answer.text[:200]}")
    return client


async def timed(call: Callable[[int], Awaitable[object]], args: argparse.Namespace) -> list[float]:
    """``call(index)`` ``--warm-up`` times untimed, then ``--requests`` times timed, in turn."""
    times = []
    for index in range(args.warm_up + args.requests):
        started = time.perf_counter()
        await call(index)
        if index >= args.warm_up:
            times.append(time.perf_counter() - started)
    return times


async def run_work(work: Work, connection: AsyncConnection, _index: int) -> None:
    await work(connection)


async def measure(probe: Probe, client: httpx.AsyncClient, args: argparse.Namespace) -> None:
    async def get(index: int) -> None:
        path = probe.paths[index % len(probe.paths)]
        answer = await client.get(path)
        if answer.status_code != 200:
            raise RuntimeError(f"{probe.name}: {path} answered {answer.status_code}")
        probe.size = len(answer.content)

    probe.times = await timed(get, args)


def judge(report: Report, name: str, account: str, times: Sequence[float], target: float) -> None:
    """One line of figures with its verdict and the load; a miss is one of the run's failures."""
    median, p95 = quantile(times, 0.5), quantile(times, 0.95)
    report.add(
        f"  {name:<38} {account:<20} {len(times):>3} {ms(median):>9} {ms(p95):>9} "
        f"{ms(max(times)):>9}  {target_verdict(p95 <= target, f'p95 ≤ {ms(target)}')}  "
        f"load {load_average()}"
    )
    if p95 > target:
        report.failures.append(f"{name} p95 {ms(p95)} (target {ms(target)})")


# ------------------------------------------------------------------------------ diagnosis


async def diagnose(engine: AsyncEngine, probe: Probe, report: Report) -> None:
    """The page's reads in this process, each statement EXPLAIN ANALYZEd; the slowest plan."""
    found = await explain_path(engine, probe.work)
    report.add(
        f"  {probe.name}: its reads in this process {ms(found.wall)}, {found.statements} "
        f"statements; {ms(found.database)} executing in PostgreSQL (EXPLAIN ANALYZE), the rest "
        "Python and the driver"
    )
    for plan in found.plans[:4]:
        report.add(f"    {ms(plan.seconds):>9}  {plan.summary()}")
    for line in found.plans[0].lines[:45] if found.plans else ():
        report.add(f"      {shortened(line)}")


# ------------------------------------------------------------------------------ the run


async def store_past_weeks(engine: AsyncEngine) -> str:
    """Store the past weeks' KPI counts as the running reconciler does every few minutes."""
    started = time.perf_counter()
    async with unit_of_work(engine, "bench_kpi_weeks") as connection:
        directory = await load_directory(connection)
        rows = await stored.refresh(connection, directory=directory, now=system_clock())
    every = ReconcilerSettings().kpi_weeks_refresh_minutes
    return (
        f"the 12 past weeks' KPI counts stored, as the reconciler does every {every:g} min: "
        f"{rows:,} (week, unit) rows in {time.perf_counter() - started:.2f} s"
    )


def probes(seeded: Seeder, directory: Directory, now: datetime) -> list[Probe]:
    """What is timed; each probe's ``work`` is the page's reads for the diagnosis."""
    week = IsoWeek.containing(now.astimezone(VN_TZ).date())

    def inbox(unit: str) -> Work:
        units = queries.covered_codes(directory, [unit])

        async def work(connection: AsyncConnection) -> None:
            await queries.inbox_page(connection, queries.InboxFilter(units), status="open")
            await queries.inbox_fields(connection, units)
            await queries.unit_names(connection, units)

        return work

    def board(unit: str) -> Work:
        scope = Scope.of(directory, unit=unit, key_units={unit})

        async def work(connection: AsyncConnection) -> None:
            month = month_so_far(now)
            await review.week_kpis(
                connection,
                scope=scope,
                week=week,
                now=now,
                forecast=month,
                stored_max_age=WorkspaceSettings().board_stored_weeks_max_age,
            )
            await lateness.accountability(
                connection,
                scope=scope,
                week=week,
                now=now,
                calendar=ReconcilerSettings().calendar(),
            )
            at = review.outstanding_at(week, now)
            await review.review_lists(connection, scope=scope, at=at, limit=100)

        return work

    async def dossier(connection: AsyncConnection) -> None:
        code = seeded.rich_codes[0]
        await story_of(connection, code, directory=directory, personal_data=True)
        await notifications_of_dossier(connection, code)

    def badges(unit: str, responsible: str | None) -> Work:
        units = queries.covered_codes(directory, [unit])

        async def work(connection: AsyncConnection) -> None:
            await queries.badge_counts(connection, units=units, responsible=responsible)

        return work

    largest = seeded.units[0]  # its busiest handler: the one holding most unresolved ones
    handler = max(largest.handlers, key=lambda account: seeded.held[account])
    leader, unit = largest.leader, largest.code
    pages = [f"/dossiers/{code}" for code in seeded.rich_codes]
    top = PROVINCE_LEADER
    return [
        Probe("GET /inbox (handler)", handler, ["/inbox"], PAGE_TARGET, inbox(unit)),
        Probe("GET /inbox (province leader)", top, ["/inbox"], PAGE_TARGET, inbox(PROVINCE)),
        Probe("GET /dossiers/{code} (rich story)", handler, pages, PAGE_TARGET, dossier),
        Probe("GET /board (province leader)", top, ["/board"], PAGE_TARGET, board(PROVINCE)),
        Probe("GET /board (unit leader)", leader, ["/board"], PAGE_TARGET, board(unit)),
        Probe("GET /badges (handler)", handler, ["/badges"], BADGE_TARGET, badges(unit, handler)),
        Probe(
            "GET /badges (province leader)", top, ["/badges"], BADGE_TARGET, badges(PROVINCE, None)
        ),
    ]


async def run(args: argparse.Namespace, db_url: str, report: Report) -> None:
    report.add(host_line() + " (at start)")
    engine = create_engine(db_url)
    server: ServiceProcess | None = None
    clients: dict[str, httpx.AsyncClient] = {}
    try:
        settings = ("shared_buffers", "work_mem", "jit", "autovacuum")
        report.add("PostgreSQL " + await postgres_summary(engine, settings))
        report.add(
            f"seeding {args.dossiers:,} dossiers, {args.discrepancies:,} unresolved and "
            f"{args.resolved:,} resolved discrepancies with COPY …"
        )
        seeded = await seed(db_url, engine, args)
        report.add(f"seeded in {seeded.seconds:.0f} s: " + counts_text(seeded.counts.items()))
        report.add(await store_past_weeks(engine))
        largest = seeded.units[0]
        report.add(
            f"measured: a handler and the leader of the largest unit, {largest.code} "
            f"({seeded.unit_of.count(0):,} dossiers), the province leader; dossier pages: "
            f"{len(seeded.rich_codes)} long stories in turn"
        )
        env = {k: v for k, v in os.environ.items() if k.startswith("DOISOAT_")}
        env |= {"DOISOAT_DATABASE_URL": db_url, "DOISOAT_LOG_LEVEL": "WARNING"}
        server = await asyncio.to_thread(start_service, "api", env=env, ready=True)
        sampler: ProcessSampler[str] = ProcessSampler({"api": server.pid})
        sampler.start()
        async with engine.connect() as connection:
            directory = await load_directory(connection)
        found = probes(seeded, directory, system_clock())
        report.add(
            f"\n{args.warm_up} warm-up, then {args.requests} timed requests each, one at a time, "
            f"to `doisoat api` (pid {server.pid}):"
        )
        report.add(
            f"  {'request':<38} {'officer':<20} {'n':>3} {'median':>9} {'p95':>9} {'max':>9}"
        )
        for probe in found:
            if probe.account not in clients:
                clients[probe.account] = await signed_in(server.base_url, engine, probe.account)
            cpu = sampler.cpu().get("api", 0.0)
            try:
                await measure(probe, clients[probe.account], args)
            except RuntimeError as error:  # a page that fails is a finding, not the end
                report.add(f"  {error}; the server's log ends with:\n{server.log_tail(15)}")
                report.failures.append(str(error))
                continue
            judge(report, probe.name, probe.account, probe.times, probe.target)
            cpu = (sampler.cpu().get("api", 0.0) - cpu) / (args.warm_up + args.requests)
            report.add(f"{'':>42}server CPU {ms(cpu)} a request, {probe.size:,} bytes")
        sampler.stop()
        report.add(f"  peak RSS of doisoat api: {mib(sampler.peak['api'])}")
        report.add("\nbadge_counts alone, in this process (one query, on one pooled connection):")
        for probe in found[-2:]:
            async with engine.connect() as connection:  # as a request's pooled connection
                times = await timed(partial(run_work, probe.work, connection), args)
            name = "badge_counts " + probe.name.split(" ", 2)[2]
            judge(report, name, probe.account, times, BADGE_TARGET)
        explained = [p for p in found if args.explain == "always" or p.missed]
        if args.explain != "never" and explained:
            report.add("\ndiagnosis (the page's reads in this process, EXPLAIN ANALYZE):")
            for probe in explained:
                await diagnose(engine, probe, report)
        report.add(f"load average at the end: {load_average()}")
    finally:
        for client in clients.values():
            await client.aclose()
        if server is not None:
            await asyncio.to_thread(server.cleanup)
        await engine.dispose()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--dossiers", type=int, default=1_000_000, help="dossiers")
    parser.add_argument("--discrepancies", type=int, help="unresolved (default: 5 %% of dossiers)")
    parser.add_argument("--resolved", type=int, help="resolved ones (default: 4 × unresolved)")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per page")
    parser.add_argument("--warm-up", type=int, default=5, help="untimed requests first")
    parser.add_argument(
        "--explain",
        choices=("auto", "always", "never"),
        default="auto",
        help="EXPLAIN ANALYZE the reads of pages that missed (auto) or of every page",
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    parser.add_argument("--seed", type=int, default=20261207, help="random seed")
    args = parser.parse_args(argv)
    if args.dossiers < 10_000 or args.requests < 1 or args.warm_up < 0:
        parser.error("--dossiers ≥ 10000, --requests ≥ 1, --warm-up ≥ 0")
    if args.discrepancies is None:
        args.discrepancies = args.dossiers // 20
    if args.resolved is None:
        args.resolved = 4 * args.discrepancies
    if not 100 <= args.discrepancies <= args.dossiers // 10:
        parser.error("--discrepancies between 100 and a tenth of --dossiers")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sigterm_as_interrupt()
    report = Report()
    return run_on_fresh_database(
        lambda db_url: asyncio.run(run(args, db_url, report)),
        prefix="bench_workspace",
        keep_db=args.keep_db,
        report=report,
    )


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
