"""Reading and acknowledging discrepancies, scoped to the units a key covers."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, insert, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import InstrumentedAttribute

from services.reconciler.schemas import DiscrepancyRead
from shared.directory import Directory
from shared.models import Discrepancy, DiscrepancyHistory, Dossier, Officer, Unit
from shared.vocabulary import SEVERITY_RANK, local_iso


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
    connection: AsyncConnection,
    *rows: Any,
    account: str,
    now: datetime,
    note: str | None = None,
) -> bool:
    """Open → acknowledged by ``account``, ``note`` in each one's history; True when any changed.

    One row (the API, an ack link) or several (the inbox); rows no longer open are left as they
    are, so acknowledging again is harmless.
    """
    still_open = [row.id for row in rows if row.status == "open"]
    if not still_open:
        return False
    changed = (
        await connection.execute(
            update(Discrepancy)
            .where(Discrepancy.id.in_(still_open), Discrepancy.status == "open")
            .values(
                status="acknowledged", acknowledged_at=now, acknowledged_by=account, updated_at=now
            )
            .returning(Discrepancy.id, Discrepancy.severity)
        )
    ).all()
    if not changed:
        return False
    await connection.execute(
        insert(DiscrepancyHistory),
        [
            {
                "discrepancy_id": ident,
                "at": now,
                "action": "acknowledged",
                "actor": account,
                "severity": severity,
                "note": note,
            }
            for ident, severity in changed
        ],
    )
    return True


@dataclass(frozen=True, slots=True)
class Badges:
    """What the workspace header counts for an officer: their unresolved work at a glance."""

    due_soon: int
    overdue: int
    unacknowledged: int


async def badge_counts(
    connection: AsyncConnection, *, units: Collection[str] | None, responsible: str | None
) -> Badges:
    """One query: due soon, overdue and unacknowledged discrepancies in a scope.

    ``units`` (None: every unit) and, for a handler, ``responsible``: what they hold there —
    the inbox the badges lead to lists no other unit's discrepancy, even one naming them.
    """
    unresolved = Discrepancy.status != literal_column("'resolved'")
    conditions: list[ColumnElement[bool]] = [unresolved]
    if responsible is not None:
        conditions.append(Discrepancy.responsible == responsible)
    if units is not None:
        conditions.append(Discrepancy.unit_code.in_(sorted(units)))
    row = (
        await connection.execute(
            select(
                func.count().filter(Discrepancy.kind == "DUE_SOON"),
                func.count().filter(Discrepancy.kind == "OVERDUE_NO_APOLOGY"),
                func.count().filter(Discrepancy.status == "open"),
            ).where(*conditions)
        )
    ).one()
    return Badges(int(row[0]), int(row[1]), int(row[2]))


# ---- the workspace's inbox (contract §6) ---------------------------------------------------

INBOX_PAGE_SIZE = 50
STATUSES = ("open", "acknowledged", "resolved")
# Resolved discrepancies only pile up: their tab counts at most this many unless it is listed.
RESOLVED_COUNT_CAP = 10_000
_SEVERITY_RANK = case(SEVERITY_RANK, value=Discrepancy.severity, else_=-1)
# What the inbox may be sorted by: each a column of its own, the id breaking ties.
INBOX_SORTS: Mapping[str, ColumnElement[Any] | InstrumentedAttribute[Any]] = {
    "opened_at": Discrepancy.opened_at,
    "since": Discrepancy.since,
    "severity": _SEVERITY_RANK,
    "dossier": Discrepancy.dossier_code,
    "unit": Discrepancy.unit_code,
}


@dataclass(frozen=True, slots=True)
class InboxFilter:
    """Which discrepancies an inbox lists: a scope of unit codes narrowed by the officer."""

    units: Collection[str]  # already covered codes (descendants and replaced codes included)
    kinds: Collection[str] = ()
    severities: Collection[str] = ()
    field: str | None = None  # dossiers.field_name (TenLinhVuc)


@dataclass(frozen=True, slots=True)
class InboxPage:
    """One page of an inbox and how many discrepancies each status tab holds."""

    rows: list[Any]  # discrepancy columns (field_name among them) + procedure_name, holder_name
    counts: Mapping[str, int]  # status → how many match the filter
    total: int  # in the status listed
    at_least: frozenset[str] = frozenset()  # statuses whose count was capped (shown "10.000+")


def _inbox_conditions(where: InboxFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Discrepancy.unit_code.in_(sorted(where.units))]
    if where.kinds:
        conditions.append(Discrepancy.kind.in_(sorted(where.kinds)))
    if where.severities:
        conditions.append(Discrepancy.severity.in_(sorted(where.severities)))
    if where.field is not None:
        conditions.append(Discrepancy.field_name == where.field)
    return conditions


async def inbox_page(
    connection: AsyncConnection,
    where: InboxFilter,
    *,
    status: str,
    sort: str = "opened_at",
    descending: bool = True,
    limit: int = INBOX_PAGE_SIZE,
    offset: int = 0,
) -> InboxPage:
    """A grouped count per status and the page; the resolved count is capped unless listed.

    Open and acknowledged discrepancies are counted exactly (the ``unit_code, status`` index);
    resolved ones only pile up over the years, so their tab counts at most
    :data:`RESOLVED_COUNT_CAP` unless it is the tab listed, which needs its exact total. The
    page is cut from ``discrepancies`` alone, then joined to its dossiers and holders, so the
    joins touch ``limit`` rows, not the whole scope.
    """
    conditions = _inbox_conditions(where)
    exact = STATUSES if status == "resolved" else ("open", "acknowledged")
    grouped = await connection.execute(
        select(Discrepancy.status, func.count())
        .where(*conditions, Discrepancy.status.in_(exact))
        .group_by(Discrepancy.status)
    )
    counts = dict.fromkeys(STATUSES, 0) | {name: int(n) for name, n in grouped.all()}
    at_least: frozenset[str] = frozenset()
    if status != "resolved":
        some = (
            select(Discrepancy.id)
            .where(*conditions, Discrepancy.status == "resolved")
            .limit(RESOLVED_COUNT_CAP + 1)
            .subquery()
        )
        resolved = (await connection.execute(select(func.count()).select_from(some))).scalar_one()
        counts["resolved"] = min(resolved, RESOLVED_COUNT_CAP)
        at_least = frozenset({"resolved"}) if resolved > RESOLVED_COUNT_CAP else frozenset()
    total = counts.get(status, 0)
    if total == 0 or offset >= total:
        return InboxPage([], counts, total, at_least)
    key = INBOX_SORTS[sort]
    ordering = (key.desc(), Discrepancy.id.desc()) if descending else (key, Discrepancy.id)
    cut = (
        select(Discrepancy, key.label("sort_key"))
        .where(*conditions, Discrepancy.status == status)
        .order_by(*ordering)
        .limit(limit)
        .offset(offset)
        .subquery()
    )
    again = (cut.c.sort_key.desc(), cut.c.id.desc()) if descending else (cut.c.sort_key, cut.c.id)
    rows = await connection.execute(
        select(
            *(column for column in cut.c if column.name != "sort_key"),
            Dossier.procedure_name,
            Officer.full_name.label("holder_name"),
        )
        .select_from(cut)
        .outerjoin(Dossier, Dossier.code == cut.c.dossier_code)
        .outerjoin(Officer, Officer.account == cut.c.responsible)
        .order_by(*again)
    )
    return InboxPage(list(rows.all()), counts, total, at_least)


async def inbox_fields(connection: AsyncConnection, units: Collection[str]) -> list[str]:
    """The fields (TenLinhVuc) of the unresolved discrepancies in ``units``: the discrepancy
    keeps its dossier's, so this reads an index, not the dossiers."""
    rows = await connection.execute(
        select(Discrepancy.field_name)
        .distinct()
        .where(
            Discrepancy.unit_code.in_(sorted(units)),
            Discrepancy.status != literal_column("'resolved'"),
            Discrepancy.field_name.is_not(None),
        )
        .order_by(Discrepancy.field_name)
    )
    return [name for (name,) in rows.all() if name is not None]


async def unit_names(connection: AsyncConnection, codes: Collection[str]) -> dict[str, str]:
    """Each known code's name, for people to read beside (or instead of) the code."""
    rows = await connection.execute(
        select(Unit.code, Unit.name).where(Unit.code.in_(sorted(codes)))
    )
    return {code: name for code, name in rows.all()}


async def discrepancies_by_ids(
    connection: AsyncConnection, ids: Collection[int], *, for_update: bool = False
) -> list[Any]:
    """The rows of ``ids`` that exist; ``for_update`` locks them until the transaction ends."""
    query = select(Discrepancy).where(Discrepancy.id.in_(sorted(ids))).order_by(Discrepancy.id)
    if for_update:
        query = query.with_for_update()
    return list((await connection.execute(query)).all())
