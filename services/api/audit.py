"""The audit log: every write through the API and every acknowledgement, and who read it.

:class:`AuditMiddleware` watches ``POST``/``PUT``/``PATCH``/``DELETE`` under ``/api/v1`` and
``POST /ack/{token}``. Once the answer's status is known it writes one row in a transaction of
its own — account and role of the key (or, for an ack link, the token's account and the role
``link``), the action (method and route template), the target (the path parameters; for an ack
link, the discrepancy id, never the token), the status code, the client address and the time.
Refusals (401, 403, 413, …) are recorded like successes. Request bodies are never read nor
stored: they carry applicants' personal data. A failure to record is logged and never changes
the answer. ``GET /api/v1/audit`` lets admins read the log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.alerts.links import AckLinks, InvalidAckLink
from services.api.deps import EngineDep, Offset, require_role
from shared.auth import Principal
from shared.clock import VN_TZ
from shared.db import unit_of_work
from shared.models import AuditEntry

log = logging.getLogger("doisoat.audit")

AUDITED_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PREFIX = "/api/v1/"
ACK_PREFIX = "/ack/"
LINK_ROLE = "link"
MAX_LIMIT = 500
TEXT_LIMIT = 255  # the action and target columns
CLIENT_LIMIT = 64

router = APIRouter(prefix="/api/v1", tags=["audit"])
AdminKey = Annotated[Principal, Depends(require_role("admin"))]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One row of the audit log, before it is written."""

    at: datetime
    account: str | None
    role: str | None
    action: str
    target: str | None
    status_code: int
    client_address: str | None


class AuditRead(BaseModel):
    id: str
    at: str
    account: str | None
    role: str | None
    action: str
    target: str | None
    status_code: int
    client_address: str | None


class AuditPage(BaseModel):
    items: list[AuditRead]
    total: int


def audited(method: str, path: str) -> bool:
    """Writes under ``/api/v1`` and acknowledgements by link; reads are not audited."""
    return method in AUDITED_METHODS and (
        path.startswith(API_PREFIX) or (method == "POST" and path.startswith(ACK_PREFIX))
    )


def describe(
    scope: Scope, status_code: int, *, now: datetime, ack_links: AckLinks | None
) -> AuditRecord:
    """What to record about a finished request, from its ASGI scope alone (never its body)."""
    method: str = scope["method"]
    path: str = scope["path"]
    template = getattr(scope.get("route"), "path", None) or path
    if path.startswith(ACK_PREFIX):
        template = f"{ACK_PREFIX}{{token}}"  # the token is a credential: never in the log
    params: Mapping[str, Any] = scope.get("path_params") or {}
    account: str | None = None
    role: str | None = None
    target: str | None = None
    if path.startswith(ACK_PREFIX):
        role = LINK_ROLE
        token = str(params.get("token") or path.removeprefix(ACK_PREFIX))
        if ack_links is not None:
            try:
                claim = ack_links.read(token)
            except InvalidAckLink:
                pass
            else:
                account, target = claim.account, str(claim.discrepancy_id)
    else:
        principal = (scope.get("state") or {}).get("principal")
        if isinstance(principal, Principal):
            account, role = principal.account, principal.role
        if params:
            target = _target(params)
    client = scope.get("client")
    return AuditRecord(
        at=now,
        account=account,
        role=role,
        action=f"{method} {template}"[:TEXT_LIMIT],
        target=None if target is None else target[:TEXT_LIMIT],
        status_code=status_code,
        client_address=str(client[0])[:CLIENT_LIMIT] if client else None,
    )


def _target(params: Mapping[str, Any]) -> str:
    if len(params) == 1:
        return str(next(iter(params.values())))
    return " ".join(f"{name}={value}" for name, value in params.items())


async def record(connection: AsyncConnection, *, entry: AuditRecord) -> None:
    """Append one row to the audit log."""
    await connection.execute(insert(AuditEntry).values(**asdict(entry)))


async def list_entries(
    connection: AsyncConnection,
    *,
    account: str | None,
    action: str | None,
    since: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[Any], int]:
    """Newest first, with the total count under the same filters."""
    conditions = []
    if account is not None:
        conditions.append(AuditEntry.account == account)
    if action is not None:
        conditions.append(AuditEntry.action == action)
    if since is not None:
        conditions.append(AuditEntry.at >= since)
    total = (
        await connection.execute(select(func.count()).select_from(AuditEntry).where(*conditions))
    ).scalar_one()
    rows = (
        await connection.execute(
            select(AuditEntry)
            .where(*conditions)
            .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return list(rows), total


def read_model(row: Any) -> AuditRead:
    return AuditRead(
        id=str(row.id),
        at=row.at.astimezone(VN_TZ).isoformat(),
        account=row.account,
        role=row.role,
        action=row.action,
        target=row.target,
        status_code=row.status_code,
        client_address=row.client_address,
    )


@router.get("/audit", response_model=AuditPage)
async def list_audit(
    principal: AdminKey,
    engine: EngineDep,
    account: Annotated[str | None, Query(max_length=128)] = None,
    action: Annotated[str | None, Query(max_length=TEXT_LIMIT)] = None,
    since: datetime | None = None,
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
        rows, total = await list_entries(
            connection, account=account, action=action, since=since, limit=limit, offset=offset
        )
    return AuditPage(items=[read_model(row) for row in rows], total=total)


class AuditMiddleware:
    """Records audited requests once their status is known (pure ASGI: bodies pass untouched).

    The engine, clock and ack links are read from ``app.state`` at each request, as the
    dependencies do, so that whatever the app holds is what is used.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not audited(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        status_code: int | None = None

        async def send_noting_status(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        except Exception:
            await _write(scope, status_code or 500)
            raise
        await _write(scope, status_code or 500)


async def _write(scope: Scope, status_code: int) -> None:
    """Write one row in its own transaction; log and carry on when that fails."""
    action = str(scope.get("method"))
    try:
        state = scope["app"].state
        entry = describe(
            scope,
            status_code,
            now=state.clock(),
            ack_links=getattr(state, "ack_links", None),
        )
        action = entry.action
        async with unit_of_work(state.engine, "audit") as connection:
            await record(connection, entry=entry)
    except Exception:
        log.error(
            "audit entry not written",
            extra={"action": action, "status_code": status_code},
            exc_info=True,
        )
