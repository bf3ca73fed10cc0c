"""Keeping each dossier's date marks (DATES_REWRITTEN) up to date, in the batch's transaction.

The marks are merged in Python (:func:`shared.date_marks.merge`: minima and maxima, so the
order does not matter) with the row locked on PostgreSQL: an HTTP batch and a Kafka batch
touching the same dossier cannot lose each other's snapshot.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import orjson
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.date_marks import DateMarks, SnapshotDates, merge_all
from shared.db import among, insert_for
from shared.models import DossierDateMarks

COLUMNS = tuple(field.name for field in dataclasses.fields(DateMarks))
# PostgreSQL: the merged marks of a whole batch as one JSON document (orjson, in C), unrolled
# by the database, instead of an executemany whose nine timestamps a row asyncpg encodes one
# at a time (with each merged mark built once: 12 µs of ingest CPU an event, bench/README.md).
_UPSERT_ALL = text(
    f"""
    INSERT INTO dossier_date_marks (dossier_code, {", ".join(COLUMNS)})
    SELECT * FROM json_to_recordset(CAST(:rows AS json)) AS r(
        dossier_code text, {", ".join(f"{name} timestamptz" for name in COLUMNS)}
    )
    ON CONFLICT (dossier_code) DO UPDATE SET
        {", ".join(f"{name} = excluded.{name}" for name in COLUMNS)}
    """
)


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
    rows = []
    for code in codes:
        merged = merge_all(held.get(code, DateMarks()), snapshots[code])
        rows.append({"dossier_code": code, **{name: getattr(merged, name) for name in COLUMNS}})
    if connection.dialect.name == "postgresql":
        await connection.execute(_UPSERT_ALL, {"rows": orjson.dumps(rows).decode()})
        return
    upsert = insert_for(connection, DossierDateMarks)
    await connection.execute(
        upsert.on_conflict_do_update(
            index_elements=["dossier_code"],
            set_={name: getattr(upsert.excluded, name) for name in COLUMNS},
        ),
        rows,
    )
