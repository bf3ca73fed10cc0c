"""Properties of reconciliation on the database.

1. At a fixed clock, the set of unresolved discrepancies does not depend on the order in which
   events and field reports arrived, nor on when the reconciler ran in between (histories may).
2. The schedule-driven sweep (precomputed marks, indexed query) finds exactly what the pure
   rules find when asked directly: for every dossier, ``evaluate(facts, reports, now)``.
"""

from __future__ import annotations

import random
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.service import store_events
from services.reconciler import rules
from services.reconciler.config import ReconcilerSettings
from services.reconciler.schedule import mark_for_reconcile
from services.reconciler.service import FACT_COLUMNS, facts_of
from services.reconciler.worker import Reconciler
from shared.db import Base, create_engine, unit_of_work
from shared.dvcqg import format_thoi_diem
from shared.events import DossierEvent, parse_envelope
from shared.models import Discrepancy, FieldReport
from tests.factories import BASE_TIME, dossier_code, progress, snapshot
from tests.support import postgres

CODES = [dossier_code(n) for n in range(4)]
HOURS = [BASE_TIME + timedelta(hours=h) for h in range(0, 24 * 12, 5)]


class Clock:
    def __init__(self) -> None:
        self.moment = BASE_TIME

    def __call__(self) -> datetime:
        return self.moment


@st.composite
def facts(draw: st.DrawFn) -> list[tuple[str, object]]:
    """Events and desk reports over a few dossiers and twelve days, as arrival items."""
    items: list[tuple[str, object]] = []
    for index in range(draw(st.integers(1, 10))):
        code = draw(st.sampled_from(CODES))
        emitted = draw(st.sampled_from(HOURS))
        kind = draw(st.sampled_from(["snapshot", "step", "report"]))
        if kind == "snapshot":
            due = draw(st.sampled_from(HOURS))
            status = draw(st.sampled_from([2, 4, 5, 9, 10, 3, 8]))
            extra = {"NgayHenTra": format_thoi_diem(due)}
            if status == 10:
                extra["NgayTra"] = format_thoi_diem(draw(st.sampled_from(HOURS)))
            items.append(
                (
                    "event",
                    snapshot(
                        code, event_id=f"s{index}", emitted_at=emitted, status=status, **extra
                    ),
                )
            )
        elif kind == "step":
            items.append(
                (
                    "event",
                    progress(
                        code,
                        event_id=f"p{index}",
                        emitted_at=emitted,
                        step_at=draw(st.sampled_from(HOURS)),
                    ),
                )
            )
        else:
            items.append(
                (
                    "report",
                    {
                        "report_id": f"r{index}",
                        "dossier_code": code,
                        "kind": draw(st.sampled_from(["returned", "withdrawn"])),
                        "occurred_at": draw(st.sampled_from(HOURS)),
                        "officer": "lethic.motcua",
                        "unit_code": "000.00.12.H08",
                        "note": None,
                        "channel": "api",
                    },
                )
            )
    return items


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[tuple[str, object]], list[int], datetime]:
    items = draw(facts())
    order = draw(st.permutations(range(len(items))))
    drains = draw(st.lists(st.integers(0, len(items)), max_size=3))
    final = draw(st.sampled_from(HOURS[len(HOURS) // 2 :]))
    return [items[i] for i in order], drains, final


async def clear(engine: AsyncEngine) -> None:
    async with unit_of_work(engine, "test") as connection:
        for table in reversed(Base.metadata.sorted_tables):
            await connection.execute(delete(table))


async def arrive(engine: AsyncEngine, item: tuple[str, object], clock: Clock) -> None:
    kind, payload = item
    async with unit_of_work(engine, "test") as connection:
        if kind == "event":
            event = parse_envelope(payload)
            assert isinstance(event, DossierEvent)
            await store_events(connection, [event], now=clock())
        else:
            assert isinstance(payload, dict)
            await connection.execute(insert(FieldReport).values(**payload, received_at=clock()))
            await mark_for_reconcile(connection, [payload["dossier_code"]], at=clock())


async def unresolved(engine: AsyncEngine) -> set[tuple[str, str, str]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(Discrepancy.dossier_code, Discrepancy.kind, Discrepancy.severity).where(
                Discrepancy.status != "resolved"
            )
        )
        return {(code, kind, severity) for code, kind, severity in rows.all()}


async def pure_findings(
    engine: AsyncEngine, reconciler: Reconciler, now: datetime
) -> set[tuple[str, str, str]]:
    async with engine.connect() as connection:
        dossiers = {r.code: r for r in (await connection.execute(select(*FACT_COLUMNS))).all()}
        reports: dict[str, list[rules.DeskReport]] = {}
        for r in (await connection.execute(select(FieldReport))).all():
            reports.setdefault(r.dossier_code, []).append(
                rules.DeskReport(r.report_id, r.kind, r.occurred_at, r.officer)
            )
    expected: set[tuple[str, str, str]] = set()
    for code in set(dossiers) | set(reports):
        row = dossiers.get(code)
        for finding in rules.evaluate(
            facts_of(row) if row is not None else None,
            reports.get(code, []),
            now=now,
            calendar=reconciler.calendar,
            settings=reconciler.rule_settings,
        ):
            expected.add((code, finding.kind.value, finding.severity.value))
    return expected


@pytest.fixture
async def pg_urls(pg_server: str, pg_template: str) -> AsyncIterator[list[str]]:
    names = [f"doisoat_rprop_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    for name in names:
        await postgres.create_database(pg_server, name, template=pg_template)
    yield [postgres.database_url(pg_server, name) for name in names]
    for name in names:
        await postgres.drop_database(pg_server, name)


@pytest.fixture
def sqlite_urls(sqlite_template: Path, tmp_path: Path) -> list[str]:
    paths = [tmp_path / f"r{index}.db" for index in range(2)]
    for path in paths:
        shutil.copyfile(sqlite_template, path)
    return [f"sqlite+aiosqlite:///{path}" for path in paths]


@pytest.fixture(params=["postgresql", "sqlite"])
def urls(request: pytest.FixtureRequest) -> list[str]:
    return cast(
        list[str],
        request.getfixturevalue("pg_urls" if request.param == "postgresql" else "sqlite_urls"),
    )


@pytest.fixture
async def engines(urls: list[str]) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    built = (create_engine(urls[0]), create_engine(urls[1]))
    yield built
    for engine in built:
        await engine.dispose()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(first=scenarios(), second_order=st.randoms(use_true_random=False))
async def test_unresolved_discrepancies_depend_on_the_facts_not_their_arrival(
    engines: tuple[AsyncEngine, AsyncEngine],
    urls: list[str],
    first: tuple[list[tuple[str, object]], list[int], datetime],
    second_order: random.Random,
) -> None:
    items, drains, final = first
    shuffled = list(items)
    second_order.shuffle(shuffled)
    results = []
    for engine, url, arrival, drain_points in (
        (engines[0], urls[0], items, drains),
        (engines[1], urls[1], shuffled, []),
    ):
        await clear(engine)
        clock = Clock()
        reconciler = Reconciler(ReconcilerSettings(database_url=url, _env_file=None), engine, clock)
        for position, item in enumerate(arrival):
            clock.moment = BASE_TIME + timedelta(hours=position)
            await arrive(engine, item, clock)
            if position in drain_points:
                await reconciler.drain()
        clock.moment = final
        await reconciler.drain()
        found = await unresolved(engine)
        assert found == await pure_findings(engine, reconciler, final)
        results.append(found)
    assert results[0] == results[1]
