"""The audit log: every write through the API and every acknowledgement, and who read it.

What is recorded about a request is read from its ASGI scope alone: account and role of the key
(or, for an ack link, the token's account and the role ``link``), the action (method and route
template), the target (the path parameters; for an ack link, the discrepancy id, never the
token), the status code, the client address and the time. Request bodies are never read nor
stored: they carry applicants' personal data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.types import Scope

from services.access.schemas import AuditRead
from services.alerts.links import AckLinks, InvalidAckLink
from shared.auth import Principal
from shared.models import AuditEntry
from shared.vocabulary import local_iso

AUDITED_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PREFIX = "/api/v1/"
ACK_PREFIX = "/ack/"
SIGN_IN_PREFIX = "/sign-in/"  # a sign-in link: its token is a credential too
NOT_AUDITED = ("/static/", "/metrics", "/healthz", "/readyz")
LINK_ROLE = "link"
TEXT_LIMIT = 255  # the action and target columns
CLIENT_LIMIT = 64


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


def audited(method: str, path: str) -> bool:
    """Every write — through the API, an ack link or a page (signing in included); reads are
    not audited."""
    return method in AUDITED_METHODS and not path.startswith(NOT_AUDITED)


def describe(
    scope: Scope, status_code: int, *, now: datetime, ack_links: AckLinks | None
) -> AuditRecord:
    """What to record about a finished request, from its ASGI scope alone (never its body)."""
    method: str = scope["method"]
    path: str = scope["path"]
    template = getattr(scope.get("route"), "path", None) or path
    if path.startswith(ACK_PREFIX):
        template = f"{ACK_PREFIX}{{token}}"  # the token is a credential: never in the log
    elif path.startswith(SIGN_IN_PREFIX):
        template = f"{SIGN_IN_PREFIX}{{token}}"
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
        if params and not path.startswith(SIGN_IN_PREFIX):
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
        at=local_iso(row.at) or "",
        account=row.account,
        role=row.role,
        action=row.action,
        target=row.target,
        status_code=row.status_code,
        client_address=row.client_address,
    )
