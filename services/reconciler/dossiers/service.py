"""Read side of one dossier: its stored state and its steps, as the API and pages show them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.models import Dossier, Event, ProgressStep, ReconcileSchedule
from shared.vocabulary import local_iso


async def get_dossier(connection: AsyncConnection, code: str) -> Dossier | None:
    row = (await connection.execute(select(Dossier).where(Dossier.code == code))).first()
    return None if row is None else Dossier(**row._mapping)


async def progress_of(connection: AsyncConnection, code: str) -> list[dict[str, Any]]:
    """Every step of the dossier in time order, with the fields the procedure system sent."""
    rows = await connection.execute(
        select(ProgressStep.event_id, ProgressStep.emitted_at, Event.data)
        .join(Event, Event.event_id == ProgressStep.event_id)
        .where(ProgressStep.dossier_code == code)
        .order_by(ProgressStep.step_at, ProgressStep.emitted_at, ProgressStep.event_id)
    )
    return [
        {"event_id": event_id, "emitted_at": local_iso(emitted_at), **data}
        for event_id, emitted_at, data in rows.all()
    ]


async def waiting_for_system(connection: AsyncConnection, code: str) -> datetime | None:
    """When the dossier's desk report waits for the system's data: the moment the ingest
    watermark must pass before it is judged (None when nothing waits)."""
    return (
        await connection.execute(
            select(ReconcileSchedule.check_at).where(
                ReconcileSchedule.dossier_code == code,
                ReconcileSchedule.waits_for_watermark.is_(True),
            )
        )
    ).scalar_one_or_none()
