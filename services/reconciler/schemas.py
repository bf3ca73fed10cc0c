"""Answers of the discrepancy endpoints (contract §4)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class DiscrepancyRead(BaseModel):
    id: str
    kind: str
    dossier_code: str
    unit_code: str | None
    severity: str
    status: str
    opened_at: str
    resolved_at: str | None
    responsible: str | None
    details: dict[str, Any]
    since: str
    reporter: str | None
    acknowledged_at: str | None
    acknowledged_by: str | None
    resolution: str | None


class DiscrepancyPage(BaseModel):
    items: list[DiscrepancyRead]
    total: int
