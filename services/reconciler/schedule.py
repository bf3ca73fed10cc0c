"""The reconcile schedule: mark dossiers to be judged again, in the writer's own transaction.

Writing the mark in the same transaction as the facts is what makes "reconcile right after each
batch" crash-proof: if the facts are committed, so is the mark; the reconciler picks it up.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.models import ReconcileSchedule

_MARK_MANY = text(
    """
    INSERT INTO reconcile_schedule (dossier_code, check_at)
    SELECT code, :at FROM unnest(CAST(:codes AS text[])) AS code
    ON CONFLICT (dossier_code) DO UPDATE SET check_at = excluded.check_at
    """
)


async def mark_for_reconcile(
    connection: AsyncConnection, codes: Iterable[str], *, at: datetime
) -> None:
    """Ask for ``codes`` to be judged at ``at`` (the writer's now).

    The mark is always rewritten, even over an earlier one still pending: a reconciler that
    claimed the old mark before these facts were committed then sees that the mark moved
    and leaves it for the next pass, instead of replacing it with a time computed without them.
    """
    ordered = sorted(set(codes))
    if not ordered:
        return
    if connection.dialect.name == "postgresql":
        await connection.execute(_MARK_MANY, {"codes": ordered, "at": at})
        return
    rows = [{"dossier_code": code, "check_at": at} for code in ordered]
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(ReconcileSchedule)
    statement = statement.on_conflict_do_update(
        index_elements=["dossier_code"],
        set_={"check_at": statement.excluded.check_at},
    )
    await connection.execute(statement, rows)
