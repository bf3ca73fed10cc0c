"""``doisoat demo``: a synthetic one-stop desk through the real pipeline, summed up in Vietnamese.

What it does, in order: migrate the database (the embedded SQLite default unless
``DOISOAT_DATABASE_URL`` says otherwise), refuse if it already holds data (``--reset`` recreates a
SQLite file; a PostgreSQL database is never dropped), write the directory through the directory
service, send every dossier through ingest's write path (``store_events``, the envelopes of
contract §1, in shuffled order with a few repeated deliveries), the desk's reports through the
field-report service, run the reconciler in-process at the demo's ``now``, and print what it found
with the KPIs, plus an admin key and how to use it.

Alerts are not planned: the officers are made up (example.gov.vn), and nothing should be sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import orjson
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from services import demo_data
from services.demo_data import DemoData
from services.ingest.service import store_events
from services.reconciler.config import ReconcilerSettings
from services.reconciler.directory.schemas import OfficerUpdate
from services.reconciler.directory.service import put_officer, put_unit
from services.reconciler.kpis.formulas import TARGETS, Period
from services.reconciler.kpis.service import Scope, unit_kpis
from services.reconciler.reports.schemas import FieldReportCreate, parse_report
from services.reconciler.reports.service import store_report
from services.reconciler.rules import Kind
from services.reconciler.worker import Reconciler
from shared import migrate as migrations
from shared.clock import VN_TZ, fixed_clock, system_clock
from shared.config import DEFAULT_DATABASE_URL
from shared.db import create_engine, unit_of_work
from shared.directory import Directory, load_directory
from shared.events import DossierEvent, parse_envelope
from shared.models import Discrepancy, Dossier, FieldReport, Officer, Unit

Echo = Callable[[str], None]

DEFAULT_DOSSIERS: Final = 300
DEFAULT_SEED: Final = 2025
ADMIN_ACCOUNT: Final = "quantri-demo"
REPEATED_DELIVERIES: Final = 0.02  # share of events sent twice (at-least-once delivery)

KIND_LABELS: Final = {
    Kind.RETURNED_BUT_OPEN.value: "Đã trả kết quả nhưng hệ thống vẫn mở",
    Kind.TIME_MISMATCH.value: "Lệch thời điểm trả",
    Kind.STATUS_CONFLICT.value: "Mâu thuẫn trạng thái",
    Kind.NOT_IN_SYSTEM.value: "Không có trên hệ thống",
    Kind.OVERDUE_NO_APOLOGY.value: "Quá hạn chưa xin lỗi",
    Kind.DUE_SOON.value: "Sắp đến hạn",
    Kind.STALLED.value: "Tồn đọng không xử lý",
}
SEVERITY_LABELS: Final = {"critical": "Nghiêm trọng", "warning": "Cảnh báo", "info": "Thông tin"}
SEVERITY_ORDER: Final = ("critical", "warning", "info")
KPI_COLUMNS: Final = (  # (item key, header, target)
    ("on_time_pct", "Đúng hạn", TARGETS["on_time_pct"]),
    ("online_pct", "Trực tuyến", TARGETS["online_pct"]),
    ("digitised_pct", "Số hóa", TARGETS["digitised_pct"]),
    ("in_system_pct", "Có trên HT", TARGETS["in_system_pct"]),
)
WEEKDAYS: Final = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật")
HEADINGS: Final = (
    "DỮ LIỆU MẪU",
    "SAI LỆCH PHÁT HIỆN",
    "CHỈ SỐ THEO ĐƠN VỊ",
    "KHÓA QUẢN TRỊ",
    "TIẾP THEO",
)
TOTAL_UNIT: Final = "*"  # the "unit_code" of the whole desk in DemoSummary.kpis


class DemoError(Exception):
    """The demo cannot run here; the message (Vietnamese, English beside) says why and what next."""


@dataclass(frozen=True, slots=True)
class DemoSummary:
    now: datetime
    seed: int
    dossiers: int  # known to the system
    units: int
    officers: int
    events: int  # envelopes sent, repeats included
    event_outcomes: dict[str, int]  # stored / duplicate / stale
    field_reports: int
    planted: dict[str, int]  # per kind
    planted_codes: dict[str, list[str]]  # per kind, the dossier codes planted with it
    found: dict[str, int]  # per kind, unresolved discrepancies in the database
    severities: dict[str, dict[str, int]]  # kind → severity → count
    kpis: list[dict[str, Any]]  # GET /kpis items of the 4 weeks, then the total (TOTAL_UNIT)
    admin_key: str
    text: str = field(repr=False)


# ---- the sync entry (``doisoat demo``) ------------------------------------------------------


def demo_command(
    database_url: str | None,
    *,
    dossiers: int,
    seed: int,
    echo: Echo,
    reset: bool = False,
    now: datetime | None = None,
    settings: ReconcilerSettings | None = None,
    admin_key: str | None = None,
) -> DemoSummary:
    """Migrate, guard, seed, reconcile and summarise; raises :class:`DemoError` when refused.

    ``database_url`` None means the configured one (``DOISOAT_DATABASE_URL``, else the embedded
    SQLite file). Runs its own event loop: call it from synchronous code.
    """
    settings = settings or ReconcilerSettings()
    url = database_url or settings.database_url
    check_dossiers(dossiers)
    parsed = make_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite and (not parsed.database or parsed.database == ":memory:"):
        raise DemoError(
            "Demo cần một tệp SQLite hoặc PostgreSQL, không dùng được cơ sở dữ liệu trong bộ nhớ. "
            "/ The demo needs a SQLite file or PostgreSQL, not an in-memory database."
        )
    echo(f"Cơ sở dữ liệu / database: {parsed.render_as_string(hide_password=True)}")
    if reset and sqlite:
        removed = _remove_sqlite_files(Path(parsed.database or ""))
        if removed:
            echo(f"Đã xóa tệp cũ / removed: {', '.join(str(path) for path in removed)}")
    with _quiet("alembic"):
        try:
            migrations.upgrade(url)
        except Exception as error:
            raise DemoError(f"Không chạy được migration / migration failed: {error}") from error

    async def main() -> DemoSummary:
        engine = create_engine(url)
        try:
            held = await existing_data(engine)
            if held:
                raise DemoError(_refusal(held, sqlite=sqlite, reset=reset))
            return await run_demo(
                engine,
                now=now or system_clock(),
                dossiers=dossiers,
                seed=seed,
                echo=echo,
                settings=settings,
                admin_key=admin_key,
                database_url=url,
            )
        finally:
            await engine.dispose()

    return asyncio.run(main())


def check_dossiers(dossiers: int) -> None:
    low, high = demo_data.MIN_DOSSIERS, demo_data.MAX_DOSSIERS
    if not low <= dossiers <= high:
        raise DemoError(
            f"Số hồ sơ phải từ {low} đến {high} (--dossiers {dossiers}). / "
            f"--dossiers must be between {low} and {high}."
        )


def _remove_sqlite_files(path: Path) -> list[Path]:
    removed = []
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            candidate.unlink()
            removed.append(candidate)
    return removed


def _refusal(held: dict[str, int], *, sqlite: bool, reset: bool) -> str:
    what = ", ".join(f"{count} {name}" for name, count in held.items())
    if not sqlite and reset:
        return (
            f"Cơ sở dữ liệu PostgreSQL này đã có dữ liệu ({what}); demo không bao giờ xóa một cơ "
            "sở dữ liệu PostgreSQL. Hãy tạo một cơ sở dữ liệu trống và đặt DOISOAT_DATABASE_URL "
            f"trỏ tới nó. / This PostgreSQL database already holds data ({what}); the demo never "
            "drops a PostgreSQL database: create an empty one and point DOISOAT_DATABASE_URL at it."
        )
    fix = (
        "chạy lại với --reset để xóa tệp SQLite và tạo lại từ đầu, hoặc đặt DOISOAT_DATABASE_URL "
        "sang một tệp khác / run again with --reset to delete the SQLite file and start afresh, "
        "or point DOISOAT_DATABASE_URL at another file"
        if sqlite
        else "hãy tạo một cơ sở dữ liệu trống và đặt DOISOAT_DATABASE_URL trỏ tới nó / create an "
        "empty database and point DOISOAT_DATABASE_URL at it"
    )
    return (
        f"Cơ sở dữ liệu đã có dữ liệu ({what}); demo chỉ chạy trên cơ sở dữ liệu trống: {fix}. / "
        f"The database already holds data ({what}); the demo only seeds an empty one."
    )


async def existing_data(engine: AsyncEngine) -> dict[str, int]:
    """What the database already holds, by Vietnamese name; empty when the demo may seed it."""
    tables = (
        ("hồ sơ / dossiers", Dossier),
        ("báo cáo Một cửa / field reports", FieldReport),
        ("đơn vị / units", Unit),
        ("cán bộ / officers", Officer),
    )
    held: dict[str, int] = {}
    async with engine.connect() as connection:
        for name, table in tables:
            count = (await connection.execute(select(func.count()).select_from(table))).scalar()
            if count:
                held[name] = int(count)
    return held


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Keep chatty loggers (alembic, per-discrepancy logs) out of the demo's output."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


# ---- the async core ---------------------------------------------------------------------------


async def run_demo(
    engine: AsyncEngine,
    *,
    now: datetime,
    dossiers: int,
    seed: int,
    echo: Echo,
    settings: ReconcilerSettings | None = None,
    admin_key: str | None = None,
    database_url: str | None = None,
) -> DemoSummary:
    """Seed an empty, migrated database at ``now``, reconcile, and summarise (also echoed).

    Raises :class:`DemoError` when ``dossiers`` is out of range or the database holds data.
    ``admin_key`` None draws a random one; ``settings`` None reads them from the environment.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    check_dossiers(dossiers)
    held = await existing_data(engine)
    if held:
        raise DemoError(_refusal(held, sqlite=engine.dialect.name == "sqlite", reset=False))
    settings = settings or ReconcilerSettings()
    calendar = settings.calendar()
    data = demo_data.generate(
        now=now,
        seed=seed,
        dossiers=dossiers,
        calendar=calendar,
        settings=settings.rule_settings(calendar),
    )
    key = admin_key or secrets.token_urlsafe(24)

    echo(f"Đang tạo danh bạ: {len(data.units)} đơn vị, {len(data.officers)} cán bộ…")
    await _seed_directory(engine, data, now=now)
    outcomes, events, reports = await _seed_dossiers(engine, data, now=now, seed=seed, echo=echo)

    echo("Đang đối soát…")
    with _quiet("doisoat.reconciler"):
        await Reconciler(settings, engine, fixed_clock(now)).drain()

    found, severities = await _found(engine)
    kpis = await _kpis(engine, data, now=now)
    summary = DemoSummary(
        now=now,
        seed=seed,
        dossiers=len(data.plans),
        units=len(data.units),
        officers=len(data.officers),
        events=events,
        event_outcomes=outcomes,
        field_reports=reports,
        planted=dict(data.planted),
        planted_codes={
            kind.value: [
                plan.code for plan in (*data.plans, *data.desk_only) if plan.planted is kind
            ]
            for kind in Kind
        },
        found=found,
        severities=severities,
        kpis=kpis,
        admin_key=key,
        text="",
    )
    text = render(summary, data, port=settings.http_port, database_url=database_url)
    echo(text)
    return dataclasses.replace(summary, text=text)


async def _seed_directory(engine: AsyncEngine, data: DemoData, *, now: datetime) -> None:
    async with unit_of_work(engine, "demo_directory") as connection:
        for unit in data.units:
            await put_unit(
                connection,
                code=unit.code,
                name=unit.name,
                parent_code=unit.parent_code,
                replaced_by=unit.replaced_by,
                now=now,
            )
        for officer in data.officers:
            update = OfficerUpdate(
                full_name=officer.full_name,
                unit_code=officer.unit_code,
                role=officer.role,  # type: ignore[arg-type]
                email=officer.email,
            )
            await put_officer(connection, account=officer.account, officer_in=update, now=now)


async def _seed_dossiers(
    engine: AsyncEngine, data: DemoData, *, now: datetime, seed: int, echo: Echo
) -> tuple[dict[str, int], int, int]:
    """Send the dossiers in batches through the real write paths; returns outcomes and counts."""
    rng = random.Random(f"doisoat-demo-delivery:{seed}")
    total = len(data.plans)
    size = max(50, -(-total // 5))
    outcomes = {"stored": 0, "duplicate": 0, "stale": 0}
    sent = reports = 0
    done = 0
    batches = list(demo_data.chunks(data.plans, size))
    for number, batch in enumerate(batches):
        envelopes = [envelope for plan in batch for envelope in plan.envelopes()]
        envelopes += rng.sample(envelopes, round(len(envelopes) * REPEATED_DELIVERIES))
        rng.shuffle(envelopes)  # at least once, out of order (contract §1)
        events = [_checked(envelope) for envelope in envelopes]
        async with unit_of_work(engine, "demo_ingest") as connection:
            result = await store_events(connection, events, now=now)
        for outcome in outcomes:
            outcomes[outcome] += result.count(outcome)  # type: ignore[arg-type]
        sent += len(events)

        desk = [plan for plan in batch if plan.report is not None]
        if number == len(batches) - 1:
            desk += data.desk_only
        documents = [plan.report_document() for plan in desk]
        async with unit_of_work(engine, "demo_field_reports") as connection:
            for document in documents:
                stored = await store_report(
                    connection, _report(document, now=now), channel="api", now=now
                )
                reports += stored.outcome == "accepted"
        done += len(batch)
        echo(f"Đang tạo dữ liệu… {done}/{total} hồ sơ")
    return outcomes, sent, reports


def _checked(envelope: dict[str, Any]) -> DossierEvent:
    """The envelope as a Kafka message would carry it, checked as ingest checks it."""
    parsed = parse_envelope(orjson.loads(orjson.dumps(envelope)))
    if not isinstance(parsed, DossierEvent):
        raise RuntimeError(f"demo envelope refused by the contract check: {parsed}")
    return parsed


def _report(document: dict[str, Any] | None, *, now: datetime) -> FieldReportCreate:
    parsed = parse_report(orjson.loads(orjson.dumps(document)), now=now)
    if not isinstance(parsed, FieldReportCreate):
        raise RuntimeError(f"demo field report refused by the contract check: {parsed}")
    return parsed


async def _found(engine: AsyncEngine) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    found = {kind.value: 0 for kind in Kind}
    severities: dict[str, dict[str, int]] = {kind.value: {} for kind in Kind}
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(Discrepancy.kind, Discrepancy.severity, func.count())
            .where(Discrepancy.status.in_(("open", "acknowledged")))
            .group_by(Discrepancy.kind, Discrepancy.severity)
            .order_by(Discrepancy.kind, Discrepancy.severity)
        )
        for kind, severity, count in rows.all():
            found[kind] = found.get(kind, 0) + count
            severities.setdefault(kind, {})[severity] = count
    return found, severities


async def _kpis(engine: AsyncEngine, data: DemoData, *, now: datetime) -> list[dict[str, Any]]:
    """``GET /kpis`` for the demo's four weeks: one item per unit, then the whole desk.

    The total is the same computation over a directory where every unit answers to one code.
    """
    period = Period(data.first_day, data.last_day, as_of=now)
    async with engine.connect() as connection:
        directory = await load_directory(connection)
        scope = Scope.of(directory, unit=None, key_units=None)
        items = await unit_kpis(connection, scope=scope, period=period)
        everything = Directory(replacements={code: TOTAL_UNIT for code in directory.parents})
        total = Scope.of(everything, unit=None, key_units=None)
        totals = await unit_kpis(connection, scope=total, period=period)
    return [*items, *(item for item in totals if item["unit_code"] == TOTAL_UNIT)]


# ---- the summary ------------------------------------------------------------------------------


def _number(value: int) -> str:
    return f"{value:,}".replace(",", ".")


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}".replace(".", ",") + "%"


def _mark(value: float | None, target: int) -> str:
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
        f"  {_number(summary.dossiers)} hồ sơ trong 4 tuần ({data.first_day:%d/%m}–"
        f"{data.last_day:%d/%m/%Y}); {summary.officers} cán bộ có email @example.gov.vn.",
        f"  {_number(summary.events)} sự kiện DongBoHoSoMC / CapNhatTienDoHoSoMC, gửi lộn thứ tự:",
        f"  {_number(outcomes['stored'])} ghi nhận, {_number(outcomes['duplicate'])} gửi lặp bị "
        "bỏ qua (trùng event_id).",
        f"  {_number(summary.field_reports)} báo cáo trả kết quả / rút hồ sơ của Bộ phận Một cửa.",
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
                KIND_LABELS[kind.value],
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
    target_row[-2] = f"{TARGETS['in_system_pct']}%"
    kpi_rows = [header, target_row]
    for item in summary.kpis:
        if not item["received"] and item["in_system_pct"] is None:
            continue  # the province and merged codes decide nothing themselves
        unit = "Toàn bộ" if item["unit_code"] == TOTAL_UNIT else item["unit_code"]
        cells = [unit, _number(item["received"])]
        for key, _, target in KPI_COLUMNS:
            cells.append(f"{_percent(item[key])} {_mark(item[key], target)}")
        cells.append(_number(item["without_due_date"]))
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
