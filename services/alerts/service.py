"""Use cases behind the alerts' HTTP routes: the outbox listing, a dossier's notifications and
acknowledgement by link.

The routers parse, call these and answer; the queries live here. None of these functions
commits: each route opens its one unit of work. Acknowledging itself is the reconciler's
(:mod:`services.reconciler.queries`), which owns the discrepancies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.alerts.content.views import item_view
from services.alerts.content.wording import alert_content
from services.reconciler import queries as reconciler_queries
from shared.directory import load_directory
from shared.models import Discrepancy, Dossier, Notification, Officer, Unit
from shared.vocabulary import local_iso

NOTIFICATION_STATUSES = ("pending", "sent", "dead", "cancelled")


# ---- GET /api/v1/notifications -------------------------------------------------------------


def _notification(row: Any) -> dict[str, Any]:
    """One outbox row as the API shows it (ids as strings, moments in Vietnam time)."""
    return {
        "id": str(row.id),
        "discrepancy_id": None if row.discrepancy_id is None else str(row.discrepancy_id),
        "purpose": row.purpose,
        "severity": row.severity,
        "recipient": row.recipient,
        "channel": row.channel,
        "address": row.address,
        "unit_code": row.unit_code,
        "status": row.status,
        "not_before": local_iso(row.not_before),
        "attempts": row.attempts,
        "last_error": row.last_error,
        "created_at": local_iso(row.created_at),
        "sent_at": local_iso(row.sent_at),
    }


async def list_notifications(
    connection: AsyncConnection, *, statuses: Sequence[str], limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of outbox rows, newest first, and how many match (any status when none given)."""
    conditions = [Notification.status.in_(statuses)] if statuses else []
    total = (
        await connection.execute(select(func.count()).select_from(Notification).where(*conditions))
    ).scalar_one()
    rows = await connection.execute(
        select(Notification)
        .where(*conditions)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [_notification(row) for row in rows.all()], total


# ---- a dossier's story: who was told, when and how ------------------------------------------


@dataclass(frozen=True, slots=True)
class DossierNotification:
    """One outbox row about a discrepancy of a dossier, as a dossier's story tells it.

    ``at`` is when it went out (``sent_at``), else when it was written; the address is left out:
    the story says who was told and how, not where to reach them.
    """

    source: ClassVar[str] = "notification"

    at: datetime
    id: int
    discrepancy_id: int
    kind: str  # the discrepancy's kind
    purpose: str
    channel: str
    recipient: str
    recipient_name: str | None
    status: str  # pending | sent | dead | cancelled
    created_at: datetime
    not_before: datetime
    sent_at: datetime | None
    attempts: int


async def notifications_of_dossier(
    connection: AsyncConnection, code: str
) -> list[DossierNotification]:
    """Every outbox row about the discrepancies of dossier ``code``, oldest first.

    Indexed lookups only: the dossier's discrepancies, then their rows by ``discrepancy_id``.
    """
    rows = await connection.execute(
        select(
            Notification.id,
            Notification.discrepancy_id,
            Discrepancy.kind,
            Notification.purpose,
            Notification.channel,
            Notification.recipient,
            Officer.full_name,
            Notification.status,
            Notification.created_at,
            Notification.not_before,
            Notification.sent_at,
            Notification.attempts,
        )
        .join(Discrepancy, Discrepancy.id == Notification.discrepancy_id)
        .outerjoin(Officer, Officer.account == Notification.recipient)
        .where(Discrepancy.dossier_code == code)
        .order_by(Notification.created_at, Notification.id)
    )
    return [
        DossierNotification(
            at=row.sent_at or row.created_at,
            id=row.id,
            discrepancy_id=row.discrepancy_id,
            kind=row.kind,
            purpose=row.purpose,
            channel=row.channel,
            recipient=row.recipient,
            recipient_name=row.full_name,
            status=row.status,
            created_at=row.created_at,
            not_before=row.not_before,
            sent_at=row.sent_at,
            attempts=row.attempts,
        )
        for row in rows.all()
    ]


# ---- GET and POST /ack/{token} -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AckTarget:
    """The discrepancy an ack link names, as the page shows it, after the request."""

    discrepancy: Any  # the discrepancies row (status, resolution, acknowledged_by/_at…)
    item: dict[str, Any]  # display strings, the same wording as the alert
    acknowledged_now: bool = False  # this request acknowledged it


async def _item(connection: AsyncConnection, row: Any) -> dict[str, Any]:
    """What the page shows: the same wording as the alert (masked, no personal data)."""
    dossier = (
        await connection.execute(
            select(
                Dossier.code,
                Dossier.procedure_name,
                Dossier.status,
                Dossier.due_at,
                Dossier.snapshot,
            ).where(Dossier.code == row.dossier_code)
        )
    ).first()
    unit_code = (await load_directory(connection)).answering_unit(row.unit_code)
    unit_name = None
    if unit_code is not None:
        unit_name = (
            await connection.execute(select(Unit.name).where(Unit.code == unit_code))
        ).scalar_one_or_none()
    discrepancy = {**row._mapping, "unit_code": unit_code}
    content = alert_content(
        discrepancy=discrepancy,
        dossier=None if dossier is None else dict(dossier._mapping),
        unit_name=unit_name,
    )
    return item_view(content)


async def ack_target(connection: AsyncConnection, *, discrepancy_id: int) -> AckTarget | None:
    """The discrepancy as it stands, changing nothing (mail scanners open every link)."""
    row = await reconciler_queries.get_discrepancy(connection, discrepancy_id)
    if row is None:
        return None
    return AckTarget(row, await _item(connection, row))


async def acknowledge(
    connection: AsyncConnection, *, discrepancy_id: int, account: str, now: datetime
) -> AckTarget | None:
    """Acknowledge an open discrepancy as ``account``; others are answered as they stand."""
    row = await reconciler_queries.get_discrepancy(connection, discrepancy_id)
    if row is None:
        return None
    changed = False
    if row.status == "open":
        changed = await reconciler_queries.acknowledge(connection, row, account=account, now=now)
        row = await reconciler_queries.get_discrepancy(connection, discrepancy_id)
    return AckTarget(row, await _item(connection, row), acknowledged_now=changed)
