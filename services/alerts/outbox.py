"""The outbox queries of the alerts dispatcher: claim due rows, lease them, record outcomes.

None of these functions commits: the dispatcher owns its units of work. The recipients of the
claimed rows are read through :mod:`services.alerts.officers`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.models import Notification

PENDING, SENT, DEAD = "pending", "sent", "dead"

_TABLE = Notification.__table__
_COLUMNS = (
    Notification.id,
    Notification.purpose,
    Notification.recipient,
    Notification.channel,
    Notification.address,
    Notification.content,
    Notification.attempts,
    Notification.not_before,
    Notification.created_at,
)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """What the dispatcher needs of one pending outbox row."""

    id: int
    purpose: str
    recipient: str
    channel: str
    address: str
    content: dict[str, Any]
    attempts: int
    not_before: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RowUpdate:
    """The new state of one row after a pass (every field written, whatever the outcome)."""

    id: int
    status: str
    channel: str
    address: str
    attempts: int
    not_before: datetime
    last_error: str | None
    group_id: int | None
    provider_id: str | None
    sent_at: datetime | None


def _update(row: OutboxRow, **changes: Any) -> RowUpdate:
    """The row as it is, with ``changes``: every column a pass writes."""
    values: dict[str, Any] = {
        "id": row.id,
        "status": PENDING,
        "channel": row.channel,
        "address": row.address,
        "attempts": row.attempts,
        "not_before": row.not_before,  # as claimed (before any lease)
        "last_error": None,
        "group_id": None,
        "provider_id": None,
        "sent_at": None,
    }
    values.update(changes)
    return RowUpdate(**values)


def sent(row: OutboxRow, group_id: int, provider_id: str | None, *, at: datetime) -> RowUpdate:
    """Delivered at ``at`` in the message of group ``group_id`` (its smallest row id)."""
    return _update(row, status=SENT, group_id=group_id, provider_id=provider_id, sent_at=at)


def later(row: OutboxRow, attempts: int, not_before: datetime, error: str) -> RowUpdate:
    """Still pending, to be tried again from ``not_before``."""
    return _update(row, attempts=attempts, not_before=not_before, last_error=error[:500])


def moved_to_zns(row: OutboxRow, phone: str, *, at: datetime, error: str) -> RowUpdate:
    """The OA cannot reach the officer: the same alert goes by ZNS to their phone."""
    return _update(row, channel="zalo_zns", address=phone, not_before=at, last_error=error[:500])


def dead(row: OutboxRow, *, reason: str, attempts: int | None = None) -> RowUpdate:
    """Given up, with the reason kept for the operators."""
    attempts = row.attempts if attempts is None else attempts
    return _update(row, status=DEAD, attempts=attempts, last_error=reason[:500])


def _row(row: Any) -> OutboxRow:
    return OutboxRow(
        id=row.id,
        purpose=row.purpose,
        recipient=row.recipient,
        channel=row.channel,
        address=row.address,
        content=dict(row.content or {}),
        attempts=row.attempts or 0,
        not_before=row.not_before,
        created_at=row.created_at,
    )


async def claim_due(connection: AsyncConnection, *, now: datetime, limit: int) -> list[OutboxRow]:
    """Pending rows due at ``now``, oldest first, locked; rows others hold are skipped.

    ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite ignores it (one dispatcher there).
    """
    rows = await connection.execute(
        select(*_COLUMNS)
        .where(Notification.status == PENDING, Notification.not_before <= now)
        .order_by(Notification.not_before, Notification.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [_row(row) for row in rows.all()]


async def claim_companions(
    connection: AsyncConnection,
    *,
    keys: Collection[tuple[str, str, str]],
    until: datetime,
    exclude: Collection[int],
    limit: int,
) -> list[OutboxRow]:
    """Other pending rows of the same (recipient, channel, purpose), due by ``until``, locked.

    They join the message of the due rows instead of following it moments later (group wait).
    """
    if not keys or limit < 1:
        return []
    conditions = [
        Notification.status == PENDING,
        Notification.not_before <= until,
        tuple_(Notification.recipient, Notification.channel, Notification.purpose).in_(
            sorted(keys)
        ),
    ]
    if exclude:
        conditions.append(Notification.id.not_in(sorted(exclude)))
    rows = await connection.execute(
        select(*_COLUMNS)
        .where(*conditions)
        .order_by(Notification.not_before, Notification.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [_row(row) for row in rows.all()]


async def lease(connection: AsyncConnection, ids: Collection[int], *, until: datetime) -> None:
    """Hide claimed rows from other claims until ``until`` (used where row locks are not held)."""
    if ids:
        await connection.execute(
            update(Notification).where(Notification.id.in_(sorted(ids))).values(not_before=until)
        )


_RECORD = (
    update(Notification)
    .where(_TABLE.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        channel=bindparam("b_channel"),
        address=bindparam("b_address"),
        attempts=bindparam("b_attempts"),
        not_before=bindparam("b_not_before"),
        last_error=bindparam("b_last_error"),
        group_id=bindparam("b_group_id"),
        provider_id=bindparam("b_provider_id"),
        sent_at=bindparam("b_sent_at"),
    )
)


async def record(connection: AsyncConnection, updates: Sequence[RowUpdate]) -> None:
    """Write the outcome of a pass, one statement executed for all rows."""
    if not updates:
        return
    await connection.execute(
        _RECORD,
        [
            {
                "b_id": change.id,
                "b_status": change.status,
                "b_channel": change.channel,
                "b_address": change.address,
                "b_attempts": change.attempts,
                "b_not_before": change.not_before,
                "b_last_error": change.last_error,
                "b_group_id": change.group_id,
                "b_provider_id": change.provider_id,
                "b_sent_at": change.sent_at,
            }
            for change in updates
        ],
    )


async def pending_stats(connection: AsyncConnection, *, now: datetime) -> tuple[int, float]:
    """(pending rows, seconds the oldest due pending row has waited since its not_before)."""
    pending = (
        await connection.execute(
            select(func.count()).select_from(Notification).where(Notification.status == PENDING)
        )
    ).scalar_one()
    oldest: datetime | None = (
        await connection.execute(
            select(func.min(Notification.not_before)).where(
                Notification.status == PENDING, Notification.not_before <= now
            )
        )
    ).scalar_one()
    if oldest is None:
        return pending, 0.0
    return pending, max((now - oldest).total_seconds(), 0.0)
