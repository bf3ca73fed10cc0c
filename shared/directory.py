"""The unit directory as a graph: who answers for a code, and which codes a key's units cover.

Edges go from a unit to its ``parent_code`` (any depth: province → commune or department) and to
``replaced_by`` (the unit that took it over in a merger). A key for unit U covers code C when U
is reachable from C: C itself, its ancestors, the units that replaced it, and their ancestors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import VN_TZ
from shared.models import Officer, Unit

MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class OfficerRecord:
    """An officer of the directory (contract §3): the one shape every service reads them in."""

    account: str
    full_name: str
    unit_code: str
    role: str
    email: str | None
    zalo_user_id: str | None
    phone: str | None
    active: bool
    updated_at: datetime

    @classmethod
    def of(cls, row: Any) -> OfficerRecord:
        """A row of the ``officers`` table (every column) as a record."""
        return cls(**row._mapping)

    @classmethod
    def of_columns(cls, row: Any) -> OfficerRecord:
        """The officer columns of a wider row (a join with the ``officers`` table)."""
        return cls(**{name: getattr(row, name) for name in cls.__slots__})

    def in_local_time(self) -> OfficerRecord:
        """As the API shows it: ``updated_at`` in Vietnam time, with its offset."""
        return replace(self, updated_at=self.updated_at.astimezone(VN_TZ))


OFFICER_COLUMNS = tuple(Officer.__table__.columns)


@dataclass(frozen=True, slots=True)
class Directory:
    parents: Mapping[str, str | None] = field(default_factory=dict)
    replacements: Mapping[str, str | None] = field(default_factory=dict)

    def answering_unit(self, code: str | None) -> str | None:
        """Follow ``replaced_by`` to the unit that answers for ``code`` today."""
        seen: set[str] = set()
        while code is not None and code not in seen and len(seen) < MAX_DEPTH:
            seen.add(code)
            successor = self.replacements.get(code)
            if successor is None:
                return code
            code = successor
        return code

    def answering_units(self) -> dict[str, str]:
        """Each code another unit answers for today (merged or renamed), with that unit."""
        found = {code: self.answering_unit(code) for code in self.replacements}
        return {code: unit for code, unit in found.items() if unit is not None and unit != code}

    def reachable(self, code: str) -> set[str]:
        """``code`` and every unit above it through parents and replacements."""
        found: set[str] = set()
        frontier = [code]
        while frontier and len(found) < MAX_DEPTH * 4:
            current = frontier.pop()
            if current in found:
                continue
            found.add(current)
            for successor in (self.parents.get(current), self.replacements.get(current)):
                if successor is not None and successor not in found:
                    frontier.append(successor)
        return found

    def covers(self, key_units: Iterable[str], code: str | None) -> bool:
        if code is None:
            return False
        return not self.reachable(code).isdisjoint(key_units)


async def load_directory(connection: AsyncConnection) -> Directory:
    rows = (await connection.execute(select(Unit.code, Unit.parent_code, Unit.replaced_by))).all()
    return Directory(
        parents={code: parent for code, parent, _ in rows},
        replacements={code: successor for code, _, successor in rows},
    )
