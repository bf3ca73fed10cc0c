"""Judging everything again when what judging depends on has changed.

The schedule keeps marks computed with the settings of the time (grace expiry, due-soon and
stall marks in working hours): after a change of thresholds, office hours or holidays (a holiday
notice in ``DOISOAT_CALENDAR_OVERRIDES`` is routine) they are wrong. A fingerprint of the judging
settings is kept in the database; a reconciler that starts with another one marks every dossier
for judging, once, however many reconcilers start together (a compare-and-set on one row).
``doisoat rejudge`` does the same by hand.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from importlib.metadata import version

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconciler import schedule, service
from services.reconciler.config import ReconcilerSettings
from services.reconciler.rules import RULES_REVISION
from shared.db import insert_for
from shared.models import ReconcilerState, ReconcileSchedule

log = logging.getLogger("doisoat.reconciler")

FINGERPRINT = "judging_settings_fingerprint"


def judging_fingerprint(settings: ReconcilerSettings) -> str:
    """A digest of everything a verdict or a mark depends on besides the facts and the clock."""
    described = {
        "rules_revision": RULES_REVISION,
        "return_grace_minutes": float(settings.return_grace_minutes),
        "time_tolerance_minutes": float(settings.time_tolerance_minutes),
        "due_soon_working_hours": float(settings.due_soon_working_hours),
        "stall_working_days": float(settings.stall_working_days),
        "office_hours": settings.office_hours,
        "calendar_overrides": {
            day.isoformat(): worked for day, worked in sorted(settings.calendar_overrides.items())
        },
        "holidays": version("holidays"),
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


async def claim_fingerprint(
    connection: AsyncConnection, fingerprint: str, *, now: datetime
) -> bool:
    """Store ``fingerprint``; True when it differs from the stored one (or none was stored).

    Only one of several reconcilers starting together gets True: the update is conditional on
    the old value, and the row lock makes the others see the new one.
    """
    inserted = await connection.execute(
        insert_for(connection, ReconcilerState)
        .values(name=FINGERPRINT, value=fingerprint, updated_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(ReconcilerState.name)
    )
    if inserted.first() is not None:
        return True
    changed = await connection.execute(
        update(ReconcilerState)
        .where(ReconcilerState.name == FINGERPRINT, ReconcilerState.value != fingerprint)
        .values(value=fingerprint, updated_at=now)
    )
    return changed.rowcount == 1


async def mark_everything(connection: AsyncConnection, fingerprint: str, *, now: datetime) -> int:
    """Mark every known dossier for judging now and store the fingerprint; returns how many."""
    await claim_fingerprint(connection, fingerprint, now=now)
    await service.reschedule_all(connection, now=now)
    return await due_count(connection, now=now)


async def rejudge_if_settings_changed(
    connection: AsyncConnection, settings: ReconcilerSettings, *, now: datetime
) -> int:
    """At a reconciler's start: mark everything when the judging settings changed; how many."""
    fingerprint = judging_fingerprint(settings)
    if not await claim_fingerprint(connection, fingerprint, now=now):
        return 0
    await service.reschedule_all(connection, now=now)
    marked = await due_count(connection, now=now)
    log.info(
        "judging settings changed: every dossier is judged again",
        extra={"dossiers": marked, "fingerprint": fingerprint[:12]},
    )
    return marked


async def due_count(connection: AsyncConnection, *, now: datetime) -> int:
    """Dossiers whose clock mark is due (what a drain still has to judge)."""
    counted = await connection.execute(
        select(func.count())
        .select_from(ReconcileSchedule)
        .where(ReconcileSchedule.check_at <= now, schedule.BY_THE_CLOCK)
    )
    return int(counted.scalar_one())
