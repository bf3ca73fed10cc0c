"""Seeding the demo's data through the real write paths, as production data arrives.

The directory goes through the directory service; dossiers through ingest's ``store_events``, as
the envelopes of contract §1 after the same contract check, in shuffled order with a few repeated
deliveries; the desk's reports through the field-report service (contract §2). Nothing is written
behind the services' back, so the demo exercises what production runs.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Final

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from services.app.console import Echo
from services.app.demo.plans import DemoData, DossierPlan
from services.ingest.service import store_events
from services.reconciler.directory.schemas import OfficerUpdate
from services.reconciler.directory.service import put_officer, put_unit
from services.reconciler.reports.schemas import FieldReportCreate, parse_report
from services.reconciler.reports.service import store_report
from shared.db import unit_of_work
from shared.events import DossierEvent, parse_envelope

REPEATED_DELIVERIES: Final = 0.02  # share of events sent twice (at-least-once delivery)


async def seed_directory(engine: AsyncEngine, data: DemoData, *, now: datetime) -> None:
    """Units and officers through the directory service, in one unit of work."""
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
                role=officer.role,
                email=officer.email,
            )
            await put_officer(connection, account=officer.account, officer_in=update, now=now)


async def seed_dossiers(
    engine: AsyncEngine, data: DemoData, *, now: datetime, seed: int, echo: Echo
) -> tuple[dict[str, int], int, int]:
    """Send the dossiers in batches through the real write paths; returns outcomes and counts."""
    rng = random.Random(f"doisoat-demo-delivery:{seed}")
    total = len(data.plans)
    size = max(50, -(-total // 5))
    outcomes = {"stored": 0, "duplicate": 0, "stale": 0}
    sent = reports = 0
    done = 0
    batches = list(chunks(data.plans, size))
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
    """The desk's report as the API would receive it, checked as the API checks it."""
    parsed = parse_report(orjson.loads(orjson.dumps(document)), now=now)
    if not isinstance(parsed, FieldReportCreate):
        raise RuntimeError(f"demo field report refused by the contract check: {parsed}")
    return parsed


def chunks(items: list[DossierPlan], size: int) -> Iterator[list[DossierPlan]]:
    """``items`` in slices of ``size``: the demo sends its dossiers in a few batches."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
