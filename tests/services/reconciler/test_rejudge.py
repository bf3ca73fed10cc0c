"""Re-judging after a settings change: the marks were computed with the old settings."""

from __future__ import annotations

import asyncio
import logging
import os
import pty
import subprocess
import sys
from datetime import date, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.service import store_events
from services.reconciler import rejudge, worker
from services.reconciler.config import ReconcilerSettings
from services.reconciler.worker import Reconciler
from shared.db import create_engine, unit_of_work
from shared.events import DossierEvent, parse_envelope
from shared.models import Discrepancy, ReconcileSchedule
from tests.factories import BASE_TIME, dossier_code, snapshot

REPO = Path(__file__).resolve().parents[3]
NOW = BASE_TIME + timedelta(days=2)
DOSSIERS = 12
IN_MEMORY = "sqlite+aiosqlite:///:memory:"
CLI = (sys.executable, "-m", "services.app.cli")


def settings(
    database_url: str = "sqlite+aiosqlite:///:memory:", **changes: Any
) -> ReconcilerSettings:
    return ReconcilerSettings(database_url=database_url, _env_file=None, **changes)


@pytest.mark.parametrize(
    "change",
    [
        {"return_grace_minutes": 90},
        {"time_tolerance_minutes": 60},
        {"due_soon_working_hours": 4},
        {"stall_working_days": 5},
        {"office_hours": "07:30-11:30,13:00-17:00"},
        {"calendar_overrides": {date(2026, 12, 31): False}},
    ],
    ids=lambda change: next(iter(change)),
)
def test_every_judging_setting_changes_the_fingerprint(change: dict[str, Any]) -> None:
    assert rejudge.judging_fingerprint(settings(**change)) != rejudge.judging_fingerprint(
        settings()
    )


def test_new_holiday_data_changes_the_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    before = rejudge.judging_fingerprint(settings())
    installed = version("holidays")
    monkeypatch.setattr(
        rejudge, "version", lambda name: f"{installed}.post1" if name == "holidays" else name
    )
    assert rejudge.judging_fingerprint(settings()) != before


@pytest.mark.parametrize(
    "change",
    [{"reconcile_chunk_size": 50}, {"reconcile_poll_seconds": 5}, {"http_port": 9000}],
    ids=lambda change: next(iter(change)),
)
def test_settings_that_judge_nothing_keep_the_fingerprint(change: dict[str, Any]) -> None:
    assert rejudge.judging_fingerprint(settings(**change)) == rejudge.judging_fingerprint(
        settings()
    )


async def seed(engine: AsyncEngine) -> None:
    """Open dossiers due in the past: every one is OVERDUE_NO_APOLOGY when judged."""
    events = [
        parse_envelope(
            snapshot(
                dossier_code(n),
                event_id=f"s{n}",
                emitted_at=BASE_TIME,
                status=4,
                NgayHenTra=BASE_TIME.strftime("%Y%m%d%H%M%S"),
            )
        )
        for n in range(DOSSIERS)
    ]
    assert all(isinstance(event, DossierEvent) for event in events)
    async with unit_of_work(engine, "seed") as connection:
        await store_events(connection, events, now=BASE_TIME)  # type: ignore[arg-type]


async def marks(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(
            (
                await connection.execute(select(func.count()).select_from(ReconcileSchedule))
            ).scalar_one()
        )


async def start_with(engine: AsyncEngine, configured: ReconcilerSettings) -> tuple[int, int]:
    """A reconciler's start: (dossiers marked for re-judging, dossiers then judged)."""
    reconciler = Reconciler(configured, engine, lambda: NOW)
    marked = await reconciler.rejudge_if_settings_changed()
    return marked, await reconciler.drain()


async def test_a_reconciler_starting_with_other_settings_judges_everything_once(
    engine: AsyncEngine, database_url: str
) -> None:
    await seed(engine)
    assert await start_with(engine, settings(database_url)) == (DOSSIERS, DOSSIERS)
    assert await start_with(engine, settings(database_url)) == (0, 0)  # same settings
    holiday = settings(database_url, calendar_overrides={date(2026, 12, 31): False})
    assert await start_with(engine, holiday) == (DOSSIERS, DOSSIERS)
    assert await start_with(engine, holiday) == (0, 0)
    async with engine.connect() as connection:
        opened = (await connection.execute(select(func.count(Discrepancy.id)))).scalar_one()
    assert opened == DOSSIERS  # judged twice, opened once each


async def test_a_long_re_judgement_logs_its_progress(
    engine: AsyncEngine,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await seed(engine)
    monkeypatch.setattr(worker, "PROGRESS_EVERY_SECONDS", 0)
    configured = settings(database_url, reconcile_chunk_size=5)
    with caplog.at_level(logging.INFO, logger="doisoat.reconciler"):
        assert await start_with(engine, configured) == (DOSSIERS, DOSSIERS)
    progress = [
        (record.judged, record.remaining)  # type: ignore[attr-defined]
        for record in caplog.records
        if record.getMessage() == "reconciling"
    ]
    assert progress == [(5, DOSSIERS - 5), (10, DOSSIERS - 10), (DOSSIERS, 0)]
    [done] = [record for record in caplog.records if record.getMessage() == "reconciled"]
    assert done.dossiers == DOSSIERS  # type: ignore[attr-defined]


async def test_reconcilers_starting_together_mark_everything_only_once(
    pg_engine: AsyncEngine, pg_database_url: str
) -> None:
    await seed(pg_engine)
    configured = settings(pg_database_url, stall_working_days=4)
    engines = [create_engine(pg_database_url) for _ in range(3)]
    try:
        marked = await asyncio.gather(
            *(
                Reconciler(configured, each, lambda: NOW).rejudge_if_settings_changed()
                for each in engines
            )
        )
    finally:
        for each in engines:
            await each.dispose()
    assert sorted(marked) == [0, 0, DOSSIERS]
    assert await marks(pg_engine) == DOSSIERS


def cli_database(tmp_path: Path) -> dict[str, str]:
    """The environment of a ``doisoat`` command on a fresh, migrated and seeded SQLite file."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'doisoat.db'}"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DOISOAT_")}
    env = {
        **clean,
        "PYTHONPATH": os.environ.get("PYTHONPATH", str(REPO)),
        "DOISOAT_DATABASE_URL": url,
    }
    subprocess.run([*CLI, "migrate"], cwd=REPO, env=env, capture_output=True, check=True)

    async def seeded() -> None:
        engine = create_engine(url)
        try:
            await seed(engine)
        finally:
            await engine.dispose()

    asyncio.run(seeded())
    return env


def test_doisoat_rejudge_judges_everything_and_sums_up(tmp_path: Path) -> None:
    env = cli_database(tmp_path)

    def doisoat(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    done = doisoat("rejudge")
    assert done.returncode == 0, done.stderr
    assert f"Đối soát lại {DOSSIERS} hồ sơ" in done.stderr
    # Long overdue and without activity: OVERDUE_NO_APOLOGY and STALLED each.
    assert f"Xong: đã đối soát {DOSSIERS} hồ sơ; mở {2 * DOSSIERS} sai lệch" in done.stdout
    again = doisoat("rejudge")
    assert f"Xong: đã đối soát {DOSSIERS} hồ sơ; mở 0 sai lệch" in again.stdout


def test_doisoat_rejudge_shows_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    env = cli_database(tmp_path)
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [*CLI, "rejudge"], cwd=REPO, env=env, stdout=terminal, stderr=subprocess.DEVNULL
        )
        os.close(terminal)
        shown = bytearray()
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            shown += chunk
        assert process.wait(timeout=120) == 0
    finally:
        os.close(controller)
    text = shown.decode("utf-8", errors="replace")
    assert "Đang đối soát" in text
    assert "100%" in text
    assert f"Xong: đã đối soát {DOSSIERS} hồ sơ" in text
