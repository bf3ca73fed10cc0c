"""Answers of the ingest HTTP endpoint (contract §5)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

ItemOutcome = Literal["stored", "duplicate", "stale", "refused"]


class EventResultRead(BaseModel):
    event_id: str | None
    outcome: ItemOutcome
    reason: str | None = None


class EventBatchRead(BaseModel):
    results: list[EventResultRead]
