"""Read side of what ingest stored: one dossier with its steps, as the API shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import VN_TZ
from shared.models import Dossier, Event, ProgressStep


def local_iso(moment: datetime | None) -> str | None:
    """API answers show moments in Vietnam time, with their offset."""
    return None if moment is None else moment.astimezone(VN_TZ).isoformat()


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
