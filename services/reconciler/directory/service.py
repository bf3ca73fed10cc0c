"""Directory use cases: units and officers, in the caller's transaction (nothing here commits).

A unit's ``parent_code`` and ``replaced_by`` may name units not loaded yet: directories arrive in
any order (a province file after its communes), and :class:`shared.directory.Directory` treats an
unknown code as a root. What is refused is a loop: a parent chain or a successor chain that comes
back to the unit itself. Each relation is checked on its own; a mixed loop (A's parent is B, B was
replaced by A) is harmless because the graph walks stop at codes already seen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconciler.directory.schemas import (
    CsvRow,
    ImportOutcome,
    OfficerImportRow,
    OfficerUpdate,
)
from shared.db import insert_for
from shared.directory import OfficerRecord, load_directory
from shared.models import Officer, Unit

LOOKUP_CHUNK = 5000
OFFICER_FIELDS = ("full_name", "unit_code", "role", "email", "zalo_user_id", "phone", "active")


@dataclass(frozen=True, slots=True)
class UnitRow:
    code: str
    name: str
    parent_code: str | None
    replaced_by: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ImportResult:
    row: int
    outcome: ImportOutcome
    reason: str | None


class DirectoryCycle(Exception):
    """Pointing a unit at this parent or successor would close a loop."""

    def __init__(self, relation: str, path: Sequence[str]) -> None:
        self.relation = relation
        self.path = list(path)
        loop = " → ".join(self.path)
        word = "đơn vị cha" if relation == "parent_code" else "đơn vị thay thế"
        super().__init__(
            f"Không thể đặt {word} ({relation}) vì tạo thành vòng lặp: {loop}. / "
            f"This {relation} would create a cycle: {loop}."
        )


def cycle_through(
    code: str, target: str | None, edges: Mapping[str, str | None]
) -> list[str] | None:
    """The loop that pointing ``code`` at ``target`` would close, as a path, or None (pure)."""
    path = [code]
    seen: set[str] = set()
    current = target
    while current is not None and current not in seen:
        path.append(current)
        if current == code:
            return path
        seen.add(current)
        current = edges.get(current)
    return None


# Units ----------------------------------------------------------------------------------------


async def get_unit(connection: AsyncConnection, code: str) -> UnitRow | None:
    """One unit by code, or None."""
    row = (await connection.execute(select(Unit.__table__).where(Unit.code == code))).first()
    return None if row is None else UnitRow(**row._mapping)


async def list_units(
    connection: AsyncConnection, *, limit: int, offset: int
) -> tuple[list[UnitRow], int]:
    """A page of units ordered by code, and how many there are."""
    total = (await connection.execute(select(func.count()).select_from(Unit))).scalar_one()
    rows = await connection.execute(
        select(Unit.__table__).order_by(Unit.code).limit(limit).offset(offset)
    )
    return [UnitRow(**row._mapping) for row in rows], total


async def put_unit(
    connection: AsyncConnection,
    *,
    code: str,
    name: str,
    parent_code: str | None,
    replaced_by: str | None,
    now: datetime,
) -> UnitRow:
    """Create or replace a unit; raise :class:`DirectoryCycle` rather than close a loop."""
    if connection.dialect.name == "postgresql":
        # Two concurrent writes could each pass the check and close a loop together.
        await connection.execute(text("LOCK TABLE units IN SHARE ROW EXCLUSIVE MODE"))
    directory = await load_directory(connection)
    for relation, target, edges in (
        ("parent_code", parent_code, directory.parents),
        ("replaced_by", replaced_by, directory.replacements),
    ):
        loop = cycle_through(code, target, edges)
        if loop is not None:
            raise DirectoryCycle(relation, loop)
    current = await get_unit(connection, code)
    if current is not None and (current.name, current.parent_code, current.replaced_by) == (
        name,
        parent_code,
        replaced_by,
    ):
        return current
    values = {"name": name, "parent_code": parent_code, "replaced_by": replaced_by}
    statement = insert_for(connection, Unit).values(code=code, updated_at=now, **values)
    statement = statement.on_conflict_do_update(
        index_elements=["code"], set_={**values, "updated_at": now}
    ).returning(*Unit.__table__.c)
    row = (await connection.execute(statement)).one()
    return UnitRow(**row._mapping)


# Officers -------------------------------------------------------------------------------------


async def officer(connection: AsyncConnection, account: str) -> OfficerRecord | None:
    """One officer by account, or None."""
    statement = select(Officer.__table__).where(Officer.account == account)
    row = (await connection.execute(statement)).first()
    return None if row is None else OfficerRecord.of(row)


async def list_officers(
    connection: AsyncConnection,
    *,
    unit: str | None,
    role: str | None,
    active: bool | None,
    limit: int,
    offset: int,
) -> tuple[list[OfficerRecord], int]:
    """A page of officers ordered by account, filtered by exact unit code, role and activity."""
    conditions = []
    if unit is not None:
        conditions.append(Officer.unit_code == unit)
    if role is not None:
        conditions.append(Officer.role == role)
    if active is not None:
        conditions.append(Officer.active.is_(active))
    count = select(func.count()).select_from(Officer).where(*conditions)
    total = (await connection.execute(count)).scalar_one()
    page = (
        select(Officer.__table__)
        .where(*conditions)
        .order_by(Officer.account)
        .limit(limit)
        .offset(offset)
    )
    return [OfficerRecord.of(row) for row in await connection.execute(page)], total


def _unchanged(stored: OfficerRecord, values: Mapping[str, Any]) -> bool:
    return all(getattr(stored, name) == values[name] for name in OFFICER_FIELDS)


async def _officers_by_account(
    connection: AsyncConnection, accounts: Sequence[str]
) -> dict[str, OfficerRecord]:
    found: dict[str, OfficerRecord] = {}
    for start in range(0, len(accounts), LOOKUP_CHUNK):
        chunk = accounts[start : start + LOOKUP_CHUNK]
        statement = select(Officer.__table__).where(Officer.account.in_(chunk))
        for row in await connection.execute(statement):
            found[row.account] = OfficerRecord.of(row)
    return found


async def _upsert_officers(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    statement = insert_for(connection, Officer)
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["account"],
        set_={name: getattr(excluded, name) for name in (*OFFICER_FIELDS, "updated_at")},
    )
    await connection.execute(statement, list(rows))


async def put_officer(
    connection: AsyncConnection, *, account: str, officer_in: OfficerUpdate, now: datetime
) -> OfficerRecord:
    """Create or replace an officer; an identical write leaves ``updated_at`` alone."""
    values = officer_in.model_dump(include=set(OFFICER_FIELDS))
    current = await officer(connection, account)
    if current is not None and _unchanged(current, values):
        return current
    await _upsert_officers(connection, [{"account": account, **values, "updated_at": now}])
    return OfficerRecord(account=account, **values, updated_at=now)


async def import_officers(
    connection: AsyncConnection, *, rows: Sequence[CsvRow], now: datetime
) -> list[ImportResult]:
    """Upsert the good rows of a CSV in one statement; say per row what became of it.

    ``duplicate``: the row leaves the stored officer unchanged (or repeats an earlier row of the
    file); ``accepted``: it creates or changes an officer; ``refused``: invalid, or the account
    was already given with other values earlier in the file (the first row wins).
    """
    results: list[ImportResult] = []
    first: dict[str, tuple[int, OfficerImportRow]] = {}
    for item in rows:
        if item.officer is None:
            results.append(ImportResult(item.row, "refused", item.reason))
            continue
        earlier_row, earlier = first.setdefault(item.officer.account, (item.row, item.officer))
        if earlier_row == item.row:
            continue
        if earlier == item.officer:
            reason = f"như dòng {earlier_row} / same as row {earlier_row}"
            results.append(ImportResult(item.row, "duplicate", reason))
        else:
            reason = (
                f"tài khoản {item.officer.account!r} đã có ở dòng {earlier_row} với nội dung khác"
                f" / account already given with other values in row {earlier_row}"
            )
            results.append(ImportResult(item.row, "refused", reason))
    stored = await _officers_by_account(connection, list(first))
    changes: list[dict[str, Any]] = []
    for account, (row, candidate) in first.items():
        values = candidate.model_dump(include=set(OFFICER_FIELDS))
        current = stored.get(account)
        if current is not None and _unchanged(current, values):
            results.append(ImportResult(row, "duplicate", "không đổi / unchanged"))
            continue
        reason = "tạo mới / created" if current is None else "cập nhật / updated"
        results.append(ImportResult(row, "accepted", reason))
        changes.append({"account": account, **values, "updated_at": now})
    if changes:
        await _upsert_officers(connection, changes)
    return sorted(results, key=lambda result: result.row)
