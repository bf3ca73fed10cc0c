"""``GET /api/v1/audit``: admins read the audit log, newest first."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BeforeValidator

from services.access import audit
from services.access.schemas import AuditPage
from shared.auth import Principal
from shared.db import unit_of_work
from shared.web.deps import EngineDep, Offset, require_role

MAX_LIMIT = 500

router = APIRouter(prefix="/api/v1", tags=["audit"])
AdminKey = Annotated[Principal, Depends(require_role("admin"))]
_STARTS_WITH_A_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _not_unix_time(value: Any) -> Any:
    """``since`` is an RFC 3339 date-time; pydantic alone would also read ``1700000000``."""
    if isinstance(value, str) and not _STARTS_WITH_A_DATE.match(value):
        raise ValueError("expected a date-time such as 2024-11-06T08:00:00+07:00")
    return value


Since = Annotated[datetime | None, BeforeValidator(_not_unix_time)]


@router.get("/audit", response_model=AuditPage)
async def list_audit(
    principal: AdminKey,
    engine: EngineDep,
    account: Annotated[str | None, Query(max_length=128)] = None,
    action: Annotated[str | None, Query(max_length=audit.TEXT_LIMIT)] = None,
    since: Since = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Offset = 0,
) -> AuditPage:
    """The audit log, newest first; ``action`` is e.g. ``POST /api/v1/field-reports``."""
    if since is not None and since.tzinfo is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "Tham số since cần múi giờ, ví dụ 2024-11-06T08:00:00+07:00. / "
            "since needs an offset, e.g. 2024-11-06T08:00:00+07:00.",
        )
    async with unit_of_work(engine, "list_audit") as connection:
        rows, total = await audit.list_entries(
            connection, account=account, action=action, since=since, limit=limit, offset=offset
        )
    return AuditPage(items=[audit.read_model(row) for row in rows], total=total)
