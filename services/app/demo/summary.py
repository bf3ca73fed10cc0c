"""What one demo run seeded and found: the record the report is rendered from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

TOTAL_UNIT: Final = "*"  # the "unit_code" of the whole desk in DemoSummary.kpis


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What the demo seeded and what the pipeline found, read back from the database."""

    now: datetime
    seed: int
    dossiers: int  # known to the system
    units: int
    officers: int
    events: int  # envelopes sent, repeats included
    event_outcomes: dict[str, int]  # stored / duplicate / stale
    field_reports: int
    planted: dict[str, int]  # per kind
    planted_codes: dict[str, list[str]]  # per kind, the dossier codes planted with it
    found: dict[str, int]  # per kind, unresolved discrepancies in the database
    severities: dict[str, dict[str, int]]  # kind → severity → count
    kpis: list[dict[str, Any]]  # GET /kpis items of the 4 weeks, then the total (TOTAL_UNIT)
    admin_key: str
    # One single-use workspace sign-in link per role: (role label, account, full name, link).
    sign_in_links: list[tuple[str, str, str, str]]
    text: str = field(repr=False)
