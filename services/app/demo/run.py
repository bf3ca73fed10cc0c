"""``doisoat demo``: a synthetic one-stop desk through the real pipeline, summed up in Vietnamese.

What it does, in order: migrate the database (the embedded SQLite default unless
``DOISOAT_DATABASE_URL`` says otherwise), refuse if it already holds data (``--reset`` recreates a
SQLite file; a PostgreSQL database is never dropped), write the directory through the directory
service, send every dossier through ingest's write path (``store_events``, the envelopes of
contract §1, in shuffled order with a few repeated deliveries), the desk's reports through the
field-report service, run the reconciler in-process at the demo's ``now``, and print what it found
with the KPIs, plus an admin key and how to use it.

Alerts are not planned: the officers are made up (example.gov.vn), and nothing should be sent.
The data are drawn by :mod:`~services.app.demo.generator`, written by
:mod:`~services.app.demo.seeding` and summed up by :mod:`~services.app.demo.report`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from services.app.console import Echo, open_database
from services.app.demo import generator as demo_data
from services.app.demo.plans import DemoData
from services.app.demo.report import render
from services.app.demo.seeding import seed_directory, seed_dossiers
from services.app.demo.summary import TOTAL_UNIT, DemoSummary
from services.reconciler.config import ReconcilerSettings
from services.reconciler.kpis.formulas import Period
from services.reconciler.kpis.service import Scope, unit_kpis
from services.reconciler.worker import Reconciler
from services.workspace import sessions
from services.workspace.pages.sign_in import link_of
from shared import migrate as migrations
from shared.clock import fixed_clock, system_clock
from shared.db import unit_of_work
from shared.directory import Directory, load_directory
from shared.models import Discrepancy, Dossier, FieldReport, Officer, Unit
from shared.vocabulary import Kind


class DemoError(Exception):
    """The demo cannot run here; the message (Vietnamese, English beside) says why and what next."""


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
        async with open_database(url, check=False) as engine:
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

    return asyncio.run(main())


def check_dossiers(dossiers: int) -> None:
    """Refuse a number of dossiers the generator cannot draw, before anything is touched."""
    low, high = demo_data.MIN_DOSSIERS, demo_data.MAX_DOSSIERS
    if not low <= dossiers <= high:
        raise DemoError(
            f"Số hồ sơ phải từ {low} đến {high} (--dossiers {dossiers}). / "
            f"--dossiers must be between {low} and {high}."
        )


def _remove_sqlite_files(path: Path) -> list[Path]:
    """Delete a SQLite file and its journals (``--reset``); returns what was there."""
    removed = []
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            candidate.unlink()
            removed.append(candidate)
    return removed


def _refusal(held: dict[str, int], *, sqlite: bool, reset: bool) -> str:
    """Why the demo will not seed a database holding data, and what to do instead."""
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
    await seed_directory(engine, data, now=now)
    outcomes, events, reports = await seed_dossiers(engine, data, now=now, seed=seed, echo=echo)

    echo("Đang đối soát…")
    with _quiet("doisoat.reconciler"):
        await Reconciler(settings, engine, fixed_clock(now)).drain()

    found, severities = await _found(engine)
    kpis = await _kpis(engine, data, now=now)
    links = await _sign_in_links(engine, data, now=now, settings=settings)
    summary = DemoSummary(
        now=now,
        seed=seed,
        dossiers=len(data.plans),
        units=len(data.units),
        officers=len(data.officers),
        events=events,
        event_outcomes=outcomes,
        field_reports=reports,
        planted={kind.value: data.planted.get(kind.value, 0) for kind in Kind},
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
        sign_in_links=links,
        text="",
    )
    text = render(summary, data, port=settings.http_port, database_url=database_url)
    echo(text)
    return dataclasses.replace(summary, text=text)


async def _sign_in_links(
    engine: AsyncEngine, data: DemoData, *, now: datetime, settings: ReconcilerSettings
) -> list[tuple[str, str, str, str]]:
    """A desk officer, a handler and a leader of the first unit, each with a sign-in link at
    the public address (``DOISOAT_PUBLIC_BASE_URL``), as the CLI's ``sign-in-link`` makes it."""
    unit = next((o.unit_code for o in data.officers if o.role == "handler"), None)
    chosen = []
    for role, label in (("desk", "Một cửa"), ("handler", "Xử lý"), ("leader", "Lãnh đạo")):
        officer = next((o for o in data.officers if o.role == role and o.unit_code == unit), None)
        if officer is not None:
            chosen.append((label, officer))
    links = []
    async with unit_of_work(engine, "demo_sign_in_links") as connection:
        for label, officer in chosen:
            token = await sessions.create_link(
                connection, officer.account, now=now, requested_from="demo"
            )
            links.append((label, officer.account, officer.full_name, link_of(settings, token)))
    return links


async def _found(engine: AsyncEngine) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Unresolved discrepancies per kind, and per kind and severity, as the reconciler left them."""
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
