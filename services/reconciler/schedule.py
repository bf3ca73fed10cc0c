"""The reconcile schedule: mark dossiers to be judged again, in the writer's own transaction.

Writing the mark in the same transaction as the facts is what makes "reconcile right after each
batch" crash-proof: if the facts are committed, so is the mark; the reconciler picks it up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import bindparam, delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.db import UTCDateTime, among, insert_for
from shared.models import ReconcileSchedule
from shared.models.judging import SCHEDULE_BY_THE_CLOCK, SCHEDULE_BY_THE_WATERMARK

_MARK_MANY = text(
    """
    INSERT INTO reconcile_schedule (dossier_code, check_at, waits_for_watermark)
    SELECT code, :at, false FROM unnest(CAST(:codes AS text[])) AS code
    ON CONFLICT (dossier_code) DO UPDATE
    SET check_at = excluded.check_at, waits_for_watermark = false
    """
)


@dataclass(frozen=True, slots=True)
class NextCheck:
    """When a dossier must be judged again: by the clock, or once the watermark passes ``at``."""

    at: datetime
    waits_for_watermark: bool = False


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
    rows = [
        {"dossier_code": code, "check_at": at, "waits_for_watermark": False} for code in ordered
    ]
    await _upsert(connection, rows)


async def _upsert(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    statement = insert_for(connection, ReconcileSchedule)
    statement = statement.on_conflict_do_update(
        index_elements=["dossier_code"],
        set_={
            "check_at": statement.excluded.check_at,
            "waits_for_watermark": statement.excluded.waits_for_watermark,
        },
    )
    await connection.execute(statement, rows)


# Word for word the partial indexes' predicates: neither PostgreSQL nor SQLite proves
# ``NOT waits_for_watermark`` from ``waits_for_watermark IS false``, and that form scanned the
# whole table — 57 ms a claim at 1,000,000 dossiers instead of 1–2 ms.
BY_THE_CLOCK: Final = text(SCHEDULE_BY_THE_CLOCK)
BY_THE_WATERMARK: Final = text(SCHEDULE_BY_THE_WATERMARK)


async def claim_due(
    connection: AsyncConnection, *, now: datetime, delivered_until: datetime | None, limit: int
) -> dict[str, datetime]:
    """Dossiers whose check is due, with the mark claimed; others' locked rows are skipped.

    Two kinds of marks: the clock's (``check_at <= now``) and those waiting for the ingest
    watermark (``check_at <= delivered_until``); each has its own partial index, so neither
    walks past the other's rows.
    """
    table = ReconcileSchedule
    due = await connection.execute(
        select(table.dossier_code, table.check_at)
        .where(table.check_at <= now, BY_THE_CLOCK)
        .order_by(table.check_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = {code: check_at for code, check_at in due.all()}
    if delivered_until is not None and len(claimed) < limit:
        waiting = await connection.execute(
            select(table.dossier_code, table.check_at)
            .where(
                table.check_at <= min(delivered_until, now),
                BY_THE_WATERMARK,
            )
            .order_by(table.check_at)
            .limit(limit - len(claimed))
            .with_for_update(skip_locked=True)
        )
        claimed.update({code: check_at for code, check_at in waiting.all()})
    return claimed


_MOVE_CLAIMED = text(
    """
    UPDATE reconcile_schedule AS s
    SET check_at = u.next_at, waits_for_watermark = u.waits
    FROM unnest(CAST(:codes AS text[]), CAST(:claimed AS timestamptz[]),
                CAST(:next_at AS timestamptz[]), CAST(:waits AS boolean[]))
         AS u(code, claimed, next_at, waits)
    WHERE s.dossier_code = u.code AND s.check_at = u.claimed
    """
)
_DROP_CLAIMED = text(
    """
    DELETE FROM reconcile_schedule AS s
    USING unnest(CAST(:codes AS text[]), CAST(:claimed AS timestamptz[])) AS u(code, claimed)
    WHERE s.dossier_code = u.code AND s.check_at = u.claimed
    """
)


async def set_next_checks(
    connection: AsyncConnection,
    next_checks: dict[str, NextCheck | None],
    claimed: Mapping[str, datetime],
) -> None:
    """Set each dossier's next mark; a claimed mark is replaced only if nobody moved it.

    Without row locks (SQLite), facts committed while this chunk was being judged mark the
    dossier again; comparing with the claimed mark keeps that newer mark instead of
    overwriting it with a time computed from the older facts.
    """
    guarded = [(code, moment) for code, moment in next_checks.items() if code in claimed]
    unguarded = {code: m for code, m in next_checks.items() if code not in claimed}
    done = [code for code, moment in guarded if moment is None]
    moved = [(code, moment) for code, moment in guarded if moment is not None]
    if connection.dialect.name == "postgresql":
        await _schedule_claimed_set_based(connection, done, moved, claimed)
    else:
        await _schedule_claimed_per_row(connection, done, moved, claimed)
    finished = [code for code, moment in unguarded.items() if moment is None]
    later = [
        {
            "dossier_code": code,
            "check_at": moment.at,
            "waits_for_watermark": moment.waits_for_watermark,
        }
        for code, moment in unguarded.items()
        if moment is not None
    ]
    if finished:
        await connection.execute(
            delete(ReconcileSchedule).where(
                among(connection, ReconcileSchedule.dossier_code, finished)
            )
        )
    if later:
        await _upsert(connection, later)


async def _schedule_claimed_set_based(
    connection: AsyncConnection,
    done: Sequence[str],
    moved: Sequence[tuple[str, NextCheck]],
    claimed: Mapping[str, datetime],
) -> None:
    """PostgreSQL: one statement each for the claimed marks dropped and moved (arrays)."""
    if done:
        await connection.execute(
            _DROP_CLAIMED, {"codes": list(done), "claimed": [claimed[code] for code in done]}
        )
    if moved:
        await connection.execute(
            _MOVE_CLAIMED,
            {
                "codes": [code for code, _ in moved],
                "claimed": [claimed[code] for code, _ in moved],
                "next_at": [moment.at for _, moment in moved],
                "waits": [moment.waits_for_watermark for _, moment in moved],
            },
        )


async def _schedule_claimed_per_row(
    connection: AsyncConnection,
    done: Sequence[str],
    moved: Sequence[tuple[str, NextCheck]],
    claimed: Mapping[str, datetime],
) -> None:
    table = ReconcileSchedule.__table__
    if done:
        await connection.execute(
            delete(ReconcileSchedule).where(
                table.c.dossier_code == bindparam("code"),
                table.c.check_at == bindparam("claimed", type_=UTCDateTime()),
            ),
            [{"code": code, "claimed": claimed[code]} for code in done],
        )
    if moved:
        await connection.execute(
            update(ReconcileSchedule)
            .where(
                table.c.dossier_code == bindparam("code"),
                table.c.check_at == bindparam("claimed", type_=UTCDateTime()),
            )
            .values(
                check_at=bindparam("next", type_=UTCDateTime()),
                waits_for_watermark=bindparam("waits"),
            ),
            [
                {
                    "code": code,
                    "claimed": claimed[code],
                    "next": moment.at,
                    "waits": moment.waits_for_watermark,
                }
                for code, moment in moved
            ],
        )
