"""``doisoat demo``: every planted discrepancy is found, on SQLite and PostgreSQL, any hour."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.app.demo import generator as demo_data
from services.app.demo.catalogue import current_units
from services.app.demo.generator import KIND_ORDER
from services.app.demo.report import HEADINGS
from services.app.demo.run import DemoError, demo_command, run_demo
from services.app.demo.summary import DemoSummary
from services.reconciler.config import ReconcilerSettings
from shared.clock import VN_TZ
from shared.db import create_engine
from shared.models import Discrepancy, Dossier, FieldReport
from shared.vocabulary import KIND_LABELS, Kind

WEEKDAY_MORNING = datetime(2025, 12, 10, 9, 30, tzinfo=VN_TZ)  # a Wednesday
SATURDAY_NIGHT = datetime(2025, 12, 13, 22, 30, tzinfo=VN_TZ)
KEY = "demo-admin-key-0123456789abcdef"
DOSSIERS = 150
SIGN_IN_TOKEN = re.compile(r"/sign-in/[A-Za-z0-9_-]+")


def without_links(text: str) -> str:
    """The demo's text apart from its sign-in links' tokens (random, single-use)."""
    return SIGN_IN_TOKEN.sub("/sign-in/…", text)


REPO = Path(__file__).resolve().parents[4]
CURRENT_UNITS = [unit.code for unit in current_units()]


def settings() -> ReconcilerSettings:
    return ReconcilerSettings(_env_file=None)


async def demo(
    engine: AsyncEngine, now: datetime, *, seed: int = 7
) -> tuple[DemoSummary, list[str]]:
    printed: list[str] = []
    summary = await run_demo(
        engine,
        now=now,
        dossiers=DOSSIERS,
        seed=seed,
        echo=printed.append,
        settings=settings(),
        admin_key=KEY,
    )
    return summary, printed


async def discrepancies_by_code(engine: AsyncEngine) -> dict[str, list[str]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(Discrepancy.dossier_code, Discrepancy.kind).order_by(Discrepancy.kind)
        )
        found: dict[str, list[str]] = {}
        for code, kind in rows.all():
            found.setdefault(code, []).append(kind)
    return found


async def count(engine: AsyncEngine, table: type) -> int:
    async with engine.connect() as connection:
        return (await connection.execute(select(func.count()).select_from(table))).scalar_one()


def assert_found_as_planted(summary: DemoSummary, by_code: dict[str, list[str]]) -> None:
    assert set(summary.planted) == {kind.value for kind in Kind}
    # Every kind the demo knows how to plant is planted a few times; the others not at all.
    assert all(summary.planted[kind.value] >= 3 for kind in KIND_ORDER), summary.planted
    assert all(summary.planted[kind.value] == 0 for kind in Kind if kind not in KIND_ORDER), (
        summary.planted
    )
    assert summary.found == summary.planted
    # Each planted dossier holds exactly its kind, and nothing else was found anywhere.
    for kind, codes in summary.planted_codes.items():
        assert len(codes) == summary.planted[kind]
        for code in codes:
            assert by_code.get(code) == [kind], (code, kind, by_code.get(code))
    planted = {code for codes in summary.planted_codes.values() for code in codes}
    assert set(by_code) == planted


@pytest.mark.parametrize(
    "now", [WEEKDAY_MORNING, SATURDAY_NIGHT], ids=["weekday-morning", "saturday-night"]
)
async def test_every_planted_discrepancy_is_found_on_sqlite(
    sqlite_database_url: str, now: datetime
) -> None:
    engine = create_engine(sqlite_database_url)
    try:
        summary, printed = await demo(engine, now)
        by_code = await discrepancies_by_code(engine)
        assert await count(engine, Dossier) == DOSSIERS
        assert await count(engine, FieldReport) == summary.field_reports
    finally:
        await engine.dispose()

    assert_found_as_planted(summary, by_code)
    assert summary.planted[Kind.DUE_SOON.value] >= 3  # also at night, at the weekend
    assert summary.dossiers == DOSSIERS
    assert summary.units == 6 and summary.officers == 21
    assert summary.event_outcomes["duplicate"] > 0  # repeated deliveries changed nothing
    assert summary.event_outcomes["stored"] + summary.event_outcomes["duplicate"] == (
        summary.events
    )

    progress = [line for line in printed if line.startswith("Đang tạo dữ liệu…")]
    assert 1 <= len(progress) <= 6
    assert progress[-1] == f"Đang tạo dữ liệu… {DOSSIERS}/{DOSSIERS} hồ sơ"
    assert printed[-1] == summary.text

    text = summary.text
    for heading in HEADINGS:
        assert heading in text
    for label in KIND_LABELS.values():
        assert label in text
    assert "Nghiêm trọng" in text and "Cảnh báo" in text and "Thông tin" in text
    lines = text.splitlines()
    lines = lines[next(i for i, line in enumerate(lines) if "CHỈ SỐ THEO ĐƠN VỊ" in line) :]
    for unit in CURRENT_UNITS:
        row = next(line for line in lines if line.strip().startswith(unit + " "))
        assert row.count("%") == 4 and ("✓" in row or "✗" in row)
    assert any(line.strip().startswith("Toàn bộ") for line in lines)
    assert any("≥ 98%" in line and "≥ 50%" in line and "≥ 80%" in line for line in lines)
    assert "000.00.30.H08" in text  # the merged unit is explained
    assert f"Bearer {KEY}" in text
    assert f'export DOISOAT_API_KEYS=\'[{{"key":"{KEY}","role":"admin"' in text
    assert "doisoat run" in text and "/docs" in text and "/api/v1/discrepancies" in text


async def test_postgresql_finds_the_same_and_prints_the_same_as_sqlite(
    pg_engine: AsyncEngine, sqlite_database_url: str
) -> None:
    on_postgresql, _ = await demo(pg_engine, WEEKDAY_MORNING)
    assert_found_as_planted(on_postgresql, await discrepancies_by_code(pg_engine))

    engine = create_engine(sqlite_database_url)
    try:
        on_sqlite, _ = await demo(engine, WEEKDAY_MORNING)
    finally:
        await engine.dispose()
    # Deterministic for a seed and a moment: the same summary, whatever the database.
    assert without_links(on_sqlite.text) == without_links(on_postgresql.text)
    assert on_sqlite.planted_codes == on_postgresql.planted_codes
    assert on_sqlite.kpis == on_postgresql.kpis


def test_generation_is_deterministic_for_a_seed() -> None:
    config = settings()
    calendar = config.calendar()

    def draw(seed: int) -> list[dict[str, Any] | None]:
        data = demo_data.generate(
            now=SATURDAY_NIGHT,
            seed=seed,
            dossiers=60,
            calendar=calendar,
            settings=config.rule_settings(calendar),
        )
        return [envelope for plan in data.plans for envelope in plan.envelopes()] + [
            plan.report_document() for plan in data.desk_only
        ]

    assert draw(1) == draw(1)
    assert draw(1) != draw(2)


async def test_run_demo_refuses_a_database_that_holds_data(sqlite_database_url: str) -> None:
    engine = create_engine(sqlite_database_url)
    try:
        await run_demo(
            engine, now=WEEKDAY_MORNING, dossiers=50, seed=1, echo=lambda _: None, admin_key=KEY
        )
        with pytest.raises(DemoError, match="đã có dữ liệu"):
            await run_demo(engine, now=WEEKDAY_MORNING, dossiers=50, seed=1, echo=print)
        assert await count(engine, Dossier) == 50
    finally:
        await engine.dispose()


async def test_command_refuses_then_resets_a_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"

    def command(**options: object) -> DemoSummary:
        return demo_command(
            url,
            dossiers=60,
            seed=5,
            echo=lambda _: None,
            now=SATURDAY_NIGHT,
            settings=settings(),
            admin_key=KEY,
            **options,  # type: ignore[arg-type]
        )

    first = await asyncio.to_thread(command)
    assert first.found == first.planted
    with pytest.raises(DemoError, match="--reset"):
        await asyncio.to_thread(command)
    again = await asyncio.to_thread(command, reset=True)
    assert without_links(again.text) == without_links(first.text)  # a fresh file, the same demo
    engine = create_engine(url)
    try:
        assert await count(engine, Dossier) == 60
    finally:
        await engine.dispose()


async def test_command_never_drops_a_postgresql_database(pg_database_url: str) -> None:
    engine = create_engine(pg_database_url)
    try:
        await run_demo(
            engine, now=WEEKDAY_MORNING, dossiers=50, seed=2, echo=lambda _: None, admin_key=KEY
        )
        with pytest.raises(DemoError, match="PostgreSQL"):
            await asyncio.to_thread(
                demo_command,
                pg_database_url,
                dossiers=50,
                seed=2,
                echo=lambda _: None,
                reset=True,
                settings=settings(),
            )
        assert await count(engine, Dossier) == 50
    finally:
        await engine.dispose()


def test_command_checks_the_number_of_dossiers_before_touching_anything(tmp_path: Path) -> None:
    path = tmp_path / "never.db"
    with pytest.raises(DemoError, match="--dossiers"):
        demo_command(
            f"sqlite+aiosqlite:///{path}", dossiers=5, seed=1, echo=print, settings=settings()
        )
    assert not path.exists()


def test_sync_entry_seeds_the_embedded_default_in_a_subprocess(tmp_path: Path) -> None:
    """With no DOISOAT_DATABASE_URL, the demo fills ./data/doisoat.db, at the real time."""
    script = (
        "from services.app.demo.run import demo_command\n"
        "s = demo_command(None, dossiers=50, seed=3, echo=print)\n"
        "assert s.found == s.planted, (s.found, s.planted)\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DOISOAT_")}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**clean, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "doisoat.db").exists()
    assert "SAI LỆCH PHÁT HIỆN" in result.stdout
    assert "Đang tạo dữ liệu… 50/50 hồ sơ" in result.stdout
    assert "Traceback" not in result.stderr
