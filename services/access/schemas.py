"""What the audit log answers (``GET /api/v1/audit``)."""

from __future__ import annotations

from pydantic import BaseModel


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
