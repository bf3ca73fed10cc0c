"""Writing a chunk's verdicts: open, change severity in place, resolve — each with history.

Set-based: one statement per kind of change for the whole chunk, in the caller's transaction;
each returns the :class:`Change` records the alerts outbox is written from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
from sqlalchemy import String, bindparam, insert, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconciler.rules import Finding
from shared.db import UTCDateTime
from shared.models import Discrepancy, DiscrepancyHistory

Action = Literal["opened", "severity_changed", "handed_over", "resolved"]


@dataclass(frozen=True, slots=True)
class Change:
    """One thing that happened to a discrepancy (what alerts are written from)."""

    discrepancy_id: int
    dossier_code: str
    kind: str
    severity: str
    action: Action
    unit_code: str | None
    report_received_at: datetime | None = None
    # A hand-off: who held the discrepancy, and its unit, before this change.
    previous_responsible: str | None = None
    previous_unit_code: str | None = None


@dataclass(frozen=True, slots=True)
class Holder:
    """Who answers for a discrepancy: the dossier's latest handler and its deciding unit; and
    the dossier's field (TenLinhVuc), kept on the discrepancy for the inbox's filter."""

    responsible: str | None
    unit_code: str | None
    field_name: str | None = None


async def open_findings(
    connection: AsyncConnection,
    to_open: Sequence[tuple[str, Finding, dict[str, Any]]],
    *,
    now: datetime,
) -> list[Change]:
    if not to_open:
        return []
    rows = [
        {
            "dossier_code": code,
            "kind": finding.kind.value,
            "severity": finding.severity.value,
            "status": "open",
            "unit_code": context["unit_code"],
            "field_name": context["field_name"],
            "responsible": context["responsible"],
            "reporter": context["reporter"],
            "since": finding.since,
            "opened_at": now,
            "details": finding.details,
            "updated_at": now,
        }
        for code, finding, context in to_open
    ]
    returned = await connection.execute(
        insert(Discrepancy).returning(
            Discrepancy.id, Discrepancy.dossier_code, Discrepancy.kind, sort_by_parameter_order=True
        ),
        rows,
    )
    ids = [row.id for row in returned.all()]
    await _history(
        connection,
        [(ident, "opened", row["severity"], None) for ident, row in zip(ids, rows, strict=True)],
        now=now,
    )
    return [
        Change(
            ident,
            code,
            finding.kind.value,
            finding.severity.value,
            "opened",
            context["unit_code"],
            context["report_received_at"],
        )
        for ident, (code, finding, context) in zip(ids, to_open, strict=True)
    ]


async def update_findings(
    connection: AsyncConnection,
    to_update: Sequence[tuple[Any, Finding, Holder]],
    *,
    now: datetime,
) -> list[Change]:
    """Severity, details and holder in place; a change of severity or of holder is recorded."""
    if not to_update:
        return []
    if connection.dialect.name == "postgresql":
        await _update_all(connection, to_update, now=now)
    else:
        await _update_each(connection, to_update, now=now)
    history, changes = _update_changes(to_update)
    await _history(connection, history, now=now)
    return changes


# PostgreSQL: the chunk's updates as one JSON document unrolled by the database, one statement
# instead of an executemany of a statement per row (the details are JSON already).
_UPDATE_ALL = text(
    """
    UPDATE discrepancies AS d SET severity = r.severity, details = r.details, since = r.since,
        responsible = r.responsible, unit_code = r.unit_code, field_name = r.field_name,
        updated_at = CAST(:now AS timestamptz)
    FROM json_to_recordset(CAST(:rows AS json)) AS r(
        id bigint, severity text, details jsonb, since timestamptz, responsible text,
        unit_code text, field_name text
    )
    WHERE d.id = r.id
    """
)


async def _update_all(
    connection: AsyncConnection,
    to_update: Sequence[tuple[Any, Finding, Holder]],
    *,
    now: datetime,
) -> None:
    rows = [
        {
            "id": existing.id,
            "severity": finding.severity.value,
            "details": finding.details,
            "since": finding.since,
            "responsible": holder.responsible,
            "unit_code": holder.unit_code,
            "field_name": holder.field_name,
        }
        for existing, finding, holder in to_update
    ]
    await connection.execute(_UPDATE_ALL, {"rows": orjson.dumps(rows).decode(), "now": now})


async def _update_each(
    connection: AsyncConnection,
    to_update: Sequence[tuple[Any, Finding, Holder]],
    *,
    now: datetime,
) -> None:
    await connection.execute(
        update(Discrepancy)
        .where(Discrepancy.id == bindparam("row_id"))
        .values(
            severity=bindparam("new_severity"),
            details=bindparam("new_details", type_=Discrepancy.__table__.c.details.type),
            since=bindparam("new_since", type_=UTCDateTime()),
            responsible=bindparam("new_responsible"),
            unit_code=bindparam("new_unit_code"),
            field_name=bindparam("new_field_name"),
            updated_at=bindparam("now", type_=UTCDateTime()),
        ),
        [
            {
                "row_id": existing.id,
                "new_severity": finding.severity.value,
                "new_details": finding.details,
                "new_since": finding.since,
                "new_responsible": holder.responsible,
                "new_unit_code": holder.unit_code,
                "new_field_name": holder.field_name,
                "now": now,
            }
            for existing, finding, holder in to_update
        ],
    )


def _update_changes(
    to_update: Sequence[tuple[Any, Finding, Holder]],
) -> tuple[list[tuple[int, str, str | None, str | None]], list[Change]]:
    """The history rows and changes of updates in place: a hand-off, a change of severity."""
    changes: list[Change] = []
    history: list[tuple[int, str, str | None, str | None]] = []
    for existing, finding, holder in to_update:
        if (existing.responsible, existing.unit_code) != (holder.responsible, holder.unit_code):
            history.append(
                (existing.id, "handed_over", finding.severity.value, _hand_off(existing, holder))
            )
            changes.append(
                Change(
                    existing.id,
                    existing.dossier_code,
                    existing.kind,
                    finding.severity.value,
                    "handed_over",
                    holder.unit_code,
                    previous_responsible=existing.responsible,
                    previous_unit_code=existing.unit_code,
                )
            )
        if existing.severity != finding.severity.value:
            history.append((existing.id, "severity_changed", finding.severity.value, None))
            changes.append(
                Change(
                    existing.id,
                    existing.dossier_code,
                    existing.kind,
                    finding.severity.value,
                    "severity_changed",
                    holder.unit_code,
                )
            )
    return history, changes


def _hand_off(existing: Any, holder: Holder) -> str:
    """The history note of a hand-off: from whom (and which unit) to whom."""

    def who(account: str | None, unit: str | None) -> str:
        return f"{account or '(chưa có cán bộ)'} ({unit or '?'})"

    return (
        f"Chuyển từ {who(existing.responsible, existing.unit_code)} "
        f"sang {who(holder.responsible, holder.unit_code)}"
    )


async def resolve(
    connection: AsyncConnection, to_resolve: Sequence[tuple[Any, str]], *, now: datetime
) -> list[Change]:
    if not to_resolve:
        return []
    await connection.execute(
        update(Discrepancy)
        .where(Discrepancy.id == bindparam("row_id"))
        .values(
            status="resolved",
            resolved_at=bindparam("now", type_=UTCDateTime()),
            resolution=bindparam("reason"),
            updated_at=bindparam("now", type_=UTCDateTime()),
        ),
        [{"row_id": existing.id, "reason": reason, "now": now} for existing, reason in to_resolve],
    )
    await _history(
        connection,
        [(existing.id, "resolved", existing.severity, reason) for existing, reason in to_resolve],
        now=now,
    )
    return [
        Change(
            existing.id,
            existing.dossier_code,
            existing.kind,
            existing.severity,
            "resolved",
            existing.unit_code,
        )
        for existing, _ in to_resolve
    ]


_INSERT_HISTORY = text(
    """
    INSERT INTO discrepancy_history (discrepancy_id, at, action, actor, severity, note)
    SELECT u.discrepancy_id, :at, u.action, :actor, u.severity, u.note
    FROM unnest(CAST(:ids AS bigint[]), CAST(:actions AS text[]), CAST(:severities AS text[]),
                CAST(:notes AS text[])) AS u(discrepancy_id, action, severity, note)
    """
).bindparams(bindparam("at", type_=UTCDateTime()), bindparam("actor", type_=String()))


async def _history(
    connection: AsyncConnection,
    entries: Sequence[tuple[int, str, str | None, str | None]],
    *,
    now: datetime,
    actor: str | None = None,
) -> None:
    if not entries:
        return
    if connection.dialect.name == "postgresql":
        # One statement for the chunk; an executemany would run the foreign key check's
        # cached plan once per row.
        ids, actions, severities, notes = (list(column) for column in zip(*entries, strict=True))
        await connection.execute(
            _INSERT_HISTORY,
            {
                "ids": ids,
                "actions": actions,
                "severities": severities,
                "notes": notes,
                "at": now,
                "actor": actor,
            },
        )
        return
    await connection.execute(
        insert(DiscrepancyHistory),
        [
            {
                "discrepancy_id": ident,
                "at": now,
                "action": action,
                "actor": actor,
                "severity": severity,
                "note": note,
            }
            for ident, action, severity, note in entries
        ],
    )
