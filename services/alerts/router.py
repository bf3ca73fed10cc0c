"""``GET /api/v1/notifications``: the alerts outbox, for admins (contract §4)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status

from services.alerts import service
from shared.auth import Principal
from shared.db import unit_of_work
from shared.web.deps import EngineDep, Offset, require_role
from shared.web.openapi import comma_separated

router = APIRouter(prefix="/api/v1", tags=["notifications"])
AdminKey = Annotated[Principal, Depends(require_role("admin"))]
STATUSES = service.NOTIFICATION_STATUSES
Statuses = Annotated[
    str | None,
    Query(alias="status", description="one or several, comma-separated"),
    comma_separated(STATUSES),
]


@router.get("/notifications")
async def list_notifications(
    principal: AdminKey,
    engine: EngineDep,
    status_filter: Statuses = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Newest first; ``status`` takes one or several of pending, sent, dead (and cancelled)."""
    wanted = [item.strip() for item in status_filter.split(",")] if status_filter else []
    unknown = ", ".join(item or "''" for item in wanted if item not in STATUSES)
    if unknown:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"Trạng thái không hợp lệ: {unknown}. / Unknown status: "
            f"{unknown} (allowed: {', '.join(STATUSES)}).",
        )
    async with unit_of_work(engine, "list_notifications") as connection:
        items, total = await service.list_notifications(
            connection, statuses=wanted, limit=limit, offset=offset
        )
    return {"items": items, "total": total}
