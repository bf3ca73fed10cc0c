"""Reading and acknowledging discrepancies, scoped to the units a key covers."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconciler.schemas import DiscrepancyRead
from shared.directory import Directory
from shared.models import Discrepancy, DiscrepancyHistory
from shared.vocabulary import local_iso


def covered_codes(directory: Directory, units: Collection[str]) -> set[str]:
    """Every unit code (known to the directory, or named) that ``units`` answer for."""
    known = set(directory.parents) | set(directory.replacements)
    return {code for code in known if directory.covers(units, code)} | set(units)


def read_model(row: Any, directory: Directory) -> DiscrepancyRead:
    return DiscrepancyRead(
        id=str(row.id),
        kind=row.kind,
        dossier_code=row.dossier_code,
        unit_code=directory.answering_unit(row.unit_code),
        severity=row.severity,
        status=row.status,
        opened_at=local_iso(row.opened_at) or "",
        resolved_at=local_iso(row.resolved_at),
        responsible=row.responsible,
        details=row.details,
        since=local_iso(row.since) or "",
        reporter=row.reporter,
        acknowledged_at=local_iso(row.acknowledged_at),
        acknowledged_by=row.acknowledged_by,
        resolution=row.resolution,
    )


@dataclass(frozen=True, slots=True)
class DiscrepancyFilter:
    statuses: Collection[str] = ()
    kinds: Collection[str] = ()
    units: Collection[str] | None = None  # None: every unit
    dossier: str | None = None


async def list_discrepancies(
    connection: AsyncConnection, where: DiscrepancyFilter, *, limit: int, offset: int
) -> tuple[list[Any], int]:
    conditions: list[ColumnElement[bool]] = []
    if where.statuses:
        conditions.append(Discrepancy.status.in_(where.statuses))
    if where.kinds:
        conditions.append(Discrepancy.kind.in_(where.kinds))
    if where.units is not None:
        conditions.append(Discrepancy.unit_code.in_(where.units))
    if where.dossier:
        conditions.append(Discrepancy.dossier_code == where.dossier)
    total = (
        await connection.execute(select(func.count()).select_from(Discrepancy).where(*conditions))
    ).scalar_one()
    rows = await connection.execute(
        select(Discrepancy)
        .where(*conditions)
        .order_by(Discrepancy.opened_at.desc(), Discrepancy.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), total


async def get_discrepancy(connection: AsyncConnection, ident: int) -> Any | None:
    return (await connection.execute(select(Discrepancy).where(Discrepancy.id == ident))).first()


async def discrepancies_of(connection: AsyncConnection, code: str) -> list[Any]:
    rows = await connection.execute(
        select(Discrepancy).where(Discrepancy.dossier_code == code).order_by(Discrepancy.id)
    )
    return list(rows.all())


async def acknowledge(
    connection: AsyncConnection, row: Any, *, account: str, now: datetime
) -> bool:
    """Open → acknowledged by ``account``; True when it changed (idempotent otherwise)."""
    if row.status != "open":
        return False
    changed = await connection.execute(
        update(Discrepancy)
        .where(Discrepancy.id == row.id, Discrepancy.status == "open")
        .values(status="acknowledged", acknowledged_at=now, acknowledged_by=account, updated_at=now)
    )
    if changed.rowcount != 1:
        return False
    await connection.execute(
        insert(DiscrepancyHistory).values(
            discrepancy_id=row.id,
            at=now,
            action="acknowledged",
            actor=account,
            severity=row.severity,
            note=None,
        )
    )
    return True
