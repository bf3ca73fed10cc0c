"""Keeping each dossier's date marks (DATES_REWRITTEN) up to date, in the batch's transaction.

The marks are merged in Python (:func:`shared.date_marks.merge`: minima and maxima, so the
order does not matter) with the row locked on PostgreSQL: an HTTP batch and a Kafka batch
touching the same dossier cannot lose each other's snapshot.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.date_marks import DateMarks, SnapshotDates, merge_all
from shared.db import among, insert_for
from shared.models import DossierDateMarks

COLUMNS = tuple(field.name for field in dataclasses.fields(DateMarks))


async def record(
    connection: AsyncConnection, snapshots: Mapping[str, Sequence[SnapshotDates]]
) -> None:
    """Merge each dossier's new snapshots into its marks."""
    if not snapshots:
        return
    codes = sorted(snapshots)
    statement = select(DossierDateMarks).where(
        among(connection, DossierDateMarks.dossier_code, codes)
    )
    if connection.dialect.name == "postgresql":
        statement = statement.with_for_update()
    held = {
        row.dossier_code: DateMarks(**{name: getattr(row, name) for name in COLUMNS})
        for row in await connection.execute(statement)
    }
    rows = [
        {
            "dossier_code": code,
            **dataclasses.asdict(merge_all(held.get(code, DateMarks()), snapshots[code])),
        }
        for code in codes
    ]
    upsert = insert_for(connection, DossierDateMarks)
    await connection.execute(
        upsert.on_conflict_do_update(
            index_elements=["dossier_code"],
            set_={name: getattr(upsert.excluded, name) for name in COLUMNS},
        ),
        rows,
    )
