"""The board's list of rewritten dossiers (DATES_REWRITTEN, contract §4 and §6), found by the
real pipeline: snapshots stored by ingest, judged by the reconciler, listed by the review.

One dossier of NEW, promised for Saturday 26/10/2024 08:00 (week 2024-W43): on Sunday 27/10 a
snapshot moves the date to Tuesday 29/10 with no supplement request or apology; on Tuesday
29/10 (W44) a third puts it back.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.service import store_events
from services.reconciler.config import ReconcilerSettings
from services.reconciler.kpis import review
from services.reconciler.kpis.formulas import IsoWeek
from services.reconciler.kpis.service import Scope
from services.reconciler.worker import Reconciler
from shared.db import unit_of_work
from shared.directory import load_directory
from shared.dvcqg import format_thoi_diem
from shared.events import DossierEvent, parse_envelope
from tests.factories import BASE_TIME, dossier_code, snapshot
from tests.services.reconciler.kpis.conftest import NEW, OTHER, load
from tests.services.reconciler.kpis.test_kpis_api import UNITS

CODE = dossier_code(7)
PROMISED = BASE_TIME + timedelta(days=5)
MOVED = PROMISED + timedelta(days=3)
W43, W44 = IsoWeek(2024, 43), IsoWeek(2024, 44)


def sent(number: int, emitted: datetime, due: datetime) -> dict[str, Any]:
    return snapshot(
        CODE,
        event_id=f"s{number}",
        emitted_at=emitted,
        status=4,
        NgayHenTra=format_thoi_diem(due),
    )


async def store(engine: AsyncEngine, *envelopes: dict[str, Any], now: datetime) -> None:
    """Snapshots as ingest stores them when they arrive (``now``)."""
    events = []
    for envelope in envelopes:
        event = parse_envelope(envelope)
        assert isinstance(event, DossierEvent), event
        events.append(event)
    async with unit_of_work(engine, "test") as connection:
        result = await store_events(connection, events, now=now)
        assert result.count("stored") == len(events), result.outcomes


async def judge(engine: AsyncEngine, database_url: str, now: datetime) -> None:
    """The reconciler's worker, at ``now``, over everything due."""
    settings = ReconcilerSettings(database_url=database_url, _env_file=None)
    await Reconciler(settings, engine, lambda: now).drain()


async def lists_of(
    engine: AsyncEngine, root: str, *, at: datetime | None
) -> dict[str, review.ReviewList]:
    async with unit_of_work(engine, "test") as connection:
        scope = Scope.of(await load_directory(connection), unit=root, key_units=None)
        return await review.review_lists(connection, scope=scope, at=at, limit=100)


@pytest.fixture
async def rewritten(engine: AsyncEngine, database_url: str) -> None:
    """The promised date, then the rewrite, judged on Monday 28/10."""
    await load(engine, units=UNITS)
    rewrite = BASE_TIME + timedelta(days=6)
    await store(engine, sent(1, BASE_TIME, PROMISED), sent(2, rewrite, MOVED), now=rewrite)
    await judge(engine, database_url, BASE_TIME + timedelta(days=7))


@pytest.mark.usefixtures("rewritten")
async def test_a_rewritten_dossier_is_listed_with_the_date_that_moved(engine: AsyncEngine) -> None:
    found = (await lists_of(engine, NEW, at=None))["rewritten"]
    assert found.kind == "DATES_REWRITTEN" and found.total == 1
    (entry,) = found.entries
    assert entry.dossier_code == CODE
    assert entry.since == BASE_TIME + timedelta(days=6)  # when the new date was sent
    assert entry.details["field"] == "NgayHenTra"
    assert datetime.fromisoformat(entry.details["before"]) == PROMISED
    assert datetime.fromisoformat(entry.details["after"]) == MOVED


@pytest.mark.usefixtures("rewritten")
async def test_another_units_leader_does_not_see_it(engine: AsyncEngine) -> None:
    assert (await lists_of(engine, OTHER, at=None))["rewritten"].entries == []


async def test_the_dates_put_back_leave_it_only_in_the_week_it_was_outstanding(
    engine: AsyncEngine, database_url: str, rewritten: None
) -> None:
    put_back = BASE_TIME + timedelta(days=8)
    await store(engine, sent(3, put_back, PROMISED), now=put_back)
    await judge(engine, database_url, put_back + timedelta(hours=1))
    assert (await lists_of(engine, NEW, at=None))["rewritten"].entries == []
    end_of_w43 = review.outstanding_at(W43, put_back + timedelta(days=7))
    assert end_of_w43 is not None
    then = (await lists_of(engine, NEW, at=end_of_w43))["rewritten"]
    assert [entry.dossier_code for entry in then.entries] == [CODE]
    end_of_w44 = review.outstanding_at(W44, put_back + timedelta(days=7))
    assert (await lists_of(engine, NEW, at=end_of_w44))["rewritten"].entries == []
