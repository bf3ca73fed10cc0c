"""Keeping each dossier's date marks (DATES_REWRITTEN) up to date, in the batch's transaction:
the portable write path's way (``service._write_portably``; PostgreSQL's fast path merges them
in its one statement, ``pg_bulk``, with the same result — ``test_pg_write_path.py``).

The marks are columns of the dossier's row, which the batch's snapshot upsert has just written
(and locked, on PostgreSQL). They are merged in Python (:func:`shared.date_marks.merge`: minima
and maxima, so the order does not matter) with the row locked: an HTTP batch and a Kafka batch
touching the same dossier cannot lose each other's snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson
from sqlalchemy import bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.date_marks import COLUMNS as COLUMNS  # the columns ingest writes (bench/ seeds them)
from shared.date_marks import DateMarks, SnapshotDates, merge_all
from shared.db import among
from shared.models import Dossier

# PostgreSQL: the merged marks of a whole batch as one JSON document (orjson, in C), unrolled
# by the database, instead of an executemany whose nine timestamps a row asyncpg encodes one
# at a time (with each merged mark built once: 12 µs of ingest CPU an event, bench/README.md).
_UPDATE_ALL = text(
    f"""
    UPDATE dossiers AS d SET {", ".join(f"{name} = r.{name}" for name in COLUMNS)}
    FROM json_to_recordset(CAST(:rows AS json)) AS r(
        dossier_code text, {", ".join(f"{name} timestamptz" for name in COLUMNS)}
    )
    WHERE d.code = r.dossier_code
    """
)
_MARKS = tuple(getattr(Dossier, name) for name in COLUMNS)


async def record(
    connection: AsyncConnection, snapshots: Mapping[str, Sequence[SnapshotDates]]
) -> None:
    """Merge each dossier's new snapshots into its marks (its row exists: the snapshot's upsert
    wrote it first)."""
    if not snapshots:
        return
    codes = sorted(snapshots)
    statement = select(Dossier.code, *_MARKS).where(among(connection, Dossier.code, codes))
    if connection.dialect.name == "postgresql":
        statement = statement.with_for_update()
    held = {code: DateMarks(*marks) for code, *marks in await connection.execute(statement)}
    rows = []
    for code in codes:
        merged = merge_all(held.get(code, DateMarks()), snapshots[code])
        rows.append({"dossier_code": code, **{name: getattr(merged, name) for name in COLUMNS}})
    if connection.dialect.name == "postgresql":
        await connection.execute(_UPDATE_ALL, {"rows": orjson.dumps(rows).decode()})
        return
    await connection.execute(
        update(Dossier)
        .where(Dossier.code == bindparam("b_code"))
        .values({name: bindparam(f"b_{name}") for name in COLUMNS}),
        [{"b_code": row["dossier_code"], **{f"b_{n}": row[n] for n in COLUMNS}} for row in rows],
    )
