"""Two reconciler processes racing over the same dossiers on PostgreSQL share the work.

Each chunk is claimed with ``FOR UPDATE SKIP LOCKED``: both processes must do part of the work,
every dossier must be judged exactly once, and no discrepancy may exist twice.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reconciler.config import ReconcilerSettings
from services.reconciler.rejudge import claim_fingerprint, judging_fingerprint
from shared.db import unit_of_work
from shared.models import Discrepancy, Dossier, FieldReport, ReconcileSchedule
from tests.factories import dossier_code
from tests.support.processes import start_service

DOSSIERS = 6000
REPORTED_EVERY = 3  # every third dossier was handed back at the desk


async def seed(engine: AsyncEngine, now: datetime) -> None:
    long_ago = now - timedelta(days=30)
    dossiers = [
        {
            "code": dossier_code(n, "000.00.12.H08"),
            "status": 4,
            "unit_code": "000.00.12.H08",
            "procedure_code": "1.004227",
            "channel": 1,
            "digitised": True,
            "received_at": long_ago,
            "due_at": long_ago + timedelta(days=5),
            "snapshot": {},
            "snapshot_emitted_at": long_ago,
            "snapshot_event_id": f"s{n}",
        }
        for n in range(DOSSIERS)
    ]
    reports = [
        {
            "report_id": f"r{n}",
            "dossier_code": dossier_code(n, "000.00.12.H08"),
            "kind": "returned",
            "occurred_at": now - timedelta(days=1),
            "officer": "lethic.motcua",
            "unit_code": "000.00.12.H08",
            "channel": "api",
            "received_at": now - timedelta(days=1),
        }
        for n in range(0, DOSSIERS, REPORTED_EVERY)
    ]
    async with unit_of_work(engine, "seed") as connection:
        await connection.execute(insert(Dossier), dossiers)
        await connection.execute(insert(FieldReport), reports)
        # An established deployment: the judging settings are the ones already applied, so
        # the reconcilers judge only what is scheduled below.
        await claim_fingerprint(
            connection, judging_fingerprint(ReconcilerSettings.model_construct()), now=now
        )


async def schedule_everything(engine: AsyncEngine, now: datetime) -> None:
    async with unit_of_work(engine, "seed") as connection:
        await connection.execute(
            insert(ReconcileSchedule),
            [
                {"dossier_code": dossier_code(n, "000.00.12.H08"), "check_at": now}
                for n in range(DOSSIERS)
            ],
        )


async def due_left(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return (
            await connection.execute(
                select(func.count()).where(ReconcileSchedule.check_at <= datetime.now(UTC))
            )
        ).scalar_one()


@pytest.mark.slow
async def test_two_reconciler_processes_share_the_work_without_doubles(
    pg_engine: AsyncEngine, pg_database_url: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    await seed(pg_engine, now)
    env = {
        "DOISOAT_DATABASE_URL": pg_database_url,
        "DOISOAT_RECONCILE_CHUNK_SIZE": "50",
        "DOISOAT_RECONCILE_POLL_SECONDS": "0.2",
    }
    with (
        start_service("reconciler", env=env, log_path=tmp_path / "a.log") as first,
        start_service("reconciler", env=env, log_path=tmp_path / "b.log") as second,
    ):
        await schedule_everything(pg_engine, now)
        async with asyncio.timeout(120):
            while await due_left(pg_engine):
                await asyncio.sleep(0.2)
        judged = [p.metric("doisoat_reconcile_dossiers_total") for p in (first, second)]
    print(f"judged per process: {judged}")
    assert all(count > 0 for count in judged), judged
    assert sum(judged) == DOSSIERS
    async with pg_engine.connect() as connection:
        doubled = (
            await connection.execute(
                select(Discrepancy.dossier_code, Discrepancy.kind)
                .group_by(Discrepancy.dossier_code, Discrepancy.kind)
                .having(func.count() > 1)
            )
        ).all()
        kinds = dict(
            (
                await connection.execute(
                    select(Discrepancy.kind, func.count()).group_by(Discrepancy.kind)
                )
            ).all()
        )
    reported = len(range(0, DOSSIERS, REPORTED_EVERY))
    assert doubled == []
    assert kinds == {
        "RETURNED_BUT_OPEN": reported,
        "OVERDUE_NO_APOLOGY": DOSSIERS - reported,
        "STALLED": DOSSIERS - reported,
    }
