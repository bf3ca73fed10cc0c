"""``GET /api/v1/notifications``: the alerts outbox, for admins (contract §4)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from sqlalchemy import func, select

from services.api.deps import EngineDep, Offset, require_role
from shared.auth import Principal
from shared.clock import VN_TZ
from shared.db import unit_of_work
from shared.models import Notification

router = APIRouter(prefix="/api/v1", tags=["notifications"])
AdminKey = Annotated[Principal, Depends(require_role("admin"))]
STATUSES = ("pending", "sent", "dead", "cancelled")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(VN_TZ).isoformat()


def _item(row: Any) -> dict[str, Any]:
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
        "not_before": _iso(row.not_before),
        "attempts": row.attempts,
        "last_error": row.last_error,
        "created_at": _iso(row.created_at),
        "sent_at": _iso(row.sent_at),
    }


@router.get("/notifications")
async def list_notifications(
    principal: AdminKey,
    engine: EngineDep,
    status_filter: Annotated[str | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Newest first; ``status`` takes one or several of pending, sent, dead (and cancelled)."""
    wanted = [item.strip() for item in (status_filter or "").split(",") if item.strip()]
    unknown = [item for item in wanted if item not in STATUSES]
    if unknown:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"Trạng thái không hợp lệ: {', '.join(unknown)}. / Unknown status: "
            f"{', '.join(unknown)} (allowed: {', '.join(STATUSES)}).",
        )
    conditions = [Notification.status.in_(wanted)] if wanted else []
    async with unit_of_work(engine, "list_notifications") as connection:
        total = (
            await connection.execute(
                select(func.count()).select_from(Notification).where(*conditions)
            )
        ).scalar_one()
        rows = await connection.execute(
            select(Notification)
            .where(*conditions)
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(limit)
            .offset(offset)
        )
        items = [_item(row) for row in rows.all()]
    return {"items": items, "total": total}
