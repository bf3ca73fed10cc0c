"""Invariant 2: the stored state is a function of the set of events, never of their arrival.

For any events over a handful of dossiers — equal ``emitted_at`` values, stale snapshots — any
permutation with any duplicates, cut into any batches, leaves every table exactly as the events
applied once each in (``emitted_at``, ``event_id``) order.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.service import store_events
from shared.db import Base, create_engine, unit_of_work
from shared.events import DossierEvent, parse_envelope
from shared.models import Dossier, DossierStatusSeen, Event, ProgressStep
from tests.conftest import TEST_NOW
from tests.factories import BASE_TIME, dossier_code, progress, snapshot
from tests.support import postgres

CODES = [dossier_code(n) for n in range(3)]
MOMENTS = [BASE_TIME + timedelta(hours=h) for h in range(4)]


@st.composite
def envelopes(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Distinct events (unique ids) with deliberately colliding times."""
    count = draw(st.integers(min_value=1, max_value=14))
    drawn = []
    for index in range(count):
        code = draw(st.sampled_from(CODES))
        emitted_at = draw(st.sampled_from(MOMENTS))
        event_id = f"{draw(st.sampled_from('abc'))}{index:02d}"
        if draw(st.booleans()):
            drawn.append(
                snapshot(
                    code, event_id=event_id, emitted_at=emitted_at, status=draw(st.integers(1, 10))
                )
            )
        else:
            drawn.append(
                progress(
                    code,
                    event_id=event_id,
                    emitted_at=emitted_at,
                    step_at=draw(st.sampled_from(MOMENTS)),
                    officer=draw(st.sampled_from(["an", "binh", "chi"])),
                )
            )
    return drawn


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[DossierEvent], list[list[DossierEvent]]]:
    """The events, and the same events permuted, duplicated and cut into batches."""
    events = [parse_envelope(envelope) for envelope in draw(envelopes())]
    assert all(isinstance(event, DossierEvent) for event in events)
    repeats = draw(st.lists(st.sampled_from(events), max_size=6))
    delivered = draw(st.permutations(events + repeats))
    cuts = sorted(draw(st.sets(st.integers(1, max(len(delivered) - 1, 1)), max_size=4)))
    batches = [
        delivered[start:end]
        for start, end in zip([0, *cuts], [*cuts, len(delivered)], strict=True)
        if delivered[start:end]
    ]
    return events, batches  # type: ignore[return-value]


async def clear(engine: AsyncEngine) -> None:
    async with unit_of_work(engine, "test") as connection:
        for table in reversed(Base.metadata.sorted_tables):
            await connection.execute(delete(table))


async def contents(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    tables = {
        "events": Event,
        "dossiers": Dossier,
        "progress_steps": ProgressStep,
        "dossier_status_seen": DossierStatusSeen,
    }
    keys: dict[str, list[Any]] = {
        "events": [Event.event_id],
        "dossiers": [Dossier.code],
        "progress_steps": [ProgressStep.event_id],
        "dossier_status_seen": [DossierStatusSeen.dossier_code, DossierStatusSeen.status],
    }
    dump: dict[str, list[tuple[Any, ...]]] = {}
    async with engine.connect() as connection:
        for name, table in tables.items():
            rows = await connection.execute(select(table.__table__).order_by(*keys[name]))
            dump[name] = [tuple(row) for row in rows.all()]
    return dump


async def apply(engine: AsyncEngine, batches: list[list[DossierEvent]]) -> None:
    for batch in batches:
        async with unit_of_work(engine, "test") as connection:
            await store_events(connection, batch, now=TEST_NOW)


@pytest.fixture
async def pg_url_pair(pg_server: str, pg_template: str) -> AsyncIterator[list[str]]:
    names = [f"doisoat_prop_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    for name in names:
        await postgres.create_database(pg_server, name, template=pg_template)
    yield [postgres.database_url(pg_server, name) for name in names]
    for name in names:
        await postgres.drop_database(pg_server, name)


@pytest.fixture
def sqlite_url_pair(sqlite_template: Path, tmp_path: Path) -> list[str]:
    urls = []
    for index in range(2):
        path = tmp_path / f"prop{index}.db"
        shutil.copyfile(sqlite_template, path)
        urls.append(f"sqlite+aiosqlite:///{path}")
    return urls


@pytest.fixture(params=["postgresql", "sqlite"])
def url_pair(request: pytest.FixtureRequest) -> list[str]:
    return cast(
        list[str],
        request.getfixturevalue(f"{'pg' if request.param == 'postgresql' else 'sqlite'}_url_pair"),
    )


@pytest.fixture
async def engine_pair(url_pair: list[str]) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two empty, migrated databases of one backend: the reference and the shuffled run."""
    engines = (create_engine(url_pair[0]), create_engine(url_pair[1]))
    yield engines
    for engine in engines:
        await engine.dispose()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=deliveries())
async def test_any_arrival_order_and_duplication_gives_the_same_tables(
    engine_pair: tuple[AsyncEngine, AsyncEngine],
    case: tuple[list[DossierEvent], list[list[DossierEvent]]],
) -> None:
    reference, shuffled = engine_pair
    events, batches = case
    await clear(reference)
    await clear(shuffled)
    await apply(
        reference, [[event] for event in sorted(events, key=lambda e: (e.emitted_at, e.event_id))]
    )
    await apply(shuffled, batches)
    assert await contents(shuffled) == await contents(reference)
