"""PostgreSQL's fast path for the ingest write path: a batch in one statement.

SQLAlchemy's executemany turns every row into bound parameters one by one, and asyncpg encodes
an array parameter element by element (a timestamp costs it over a microsecond); at thousands
of events a second that work dominated the consumer's CPU. Here a batch travels as one JSON
document written by orjson, which PostgreSQL parses once into ``jsonb`` and unrolls
(``jsonb_to_recordset``) inside the caller's transaction.

The document is built event by event while the batch is parsed (:class:`PgBatchBuilder`),
before its transaction begins: the consumer does that while the previous batch is in the
database, and the transaction itself only waits for PostgreSQL. That is why the statement
needs nothing computed from another one's answer: it logs the events and, joined on the ids
that were new, inserts their progress steps, keeps when each dossier first showed a closing
status (7, 8, 9) and writes each touched dossier row once — the newest snapshot, the newest
step (its handler) and the date marks of ``DATES_REWRITTEN`` together — reporting which ids
were new and which snapshots were older than the stored state. Those three used to be three
writes of the same row (an upsert, then the step summary and the marks after it, since one
statement may not change a row twice): each a new version of a wide row and its index entries.

The semantics are exactly those of the portable path in ``service.py`` — the property tests
run both against the same expectations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.ingest.rows import event_columns, snapshot_columns, step_columns
from shared.events import DossierEvent

# Each touched dossier row is written once per batch, from six parts, each at most one row per
# dossier: the newest snapshot, the newest step (its handler) and the four date marks. For each
# part, the condition under which it changes the stored row (``d``: the stored row,
# ``excluded``: the batch's) — the SQL form of what the portable path does in Python: the
# newest snapshot and the newest step win (``rows.snapshot_order``, ``rows.step_order``), and
# the marks keep their extremes (``shared.date_marks.merge``: ties go to the earlier sighting).
_LATER_MARK = (
    "excluded.{value} IS NOT NULL AND (d.{value} IS NULL OR d.{seen} IS NULL"
    " OR excluded.{value} > d.{value}"
    " OR (excluded.{value} = d.{value} AND excluded.{seen} < d.{seen}))"
)
_TIME = "timestamptz"
_PARTS: Final = (
    (
        "newest_snapshot",
        "excluded.snapshot_event_id IS NOT NULL AND (d.snapshot_emitted_at IS NULL"
        " OR (d.snapshot_emitted_at, d.snapshot_event_id)"
        " < (excluded.snapshot_emitted_at, excluded.snapshot_event_id))",
        {
            "status": "smallint",
            "unit_code": "text",
            "procedure_code": "text",
            "procedure_name": "text",
            "field_name": "text",
            "channel": "smallint",
            "digitised": "boolean",
            "received_at": _TIME,
            "due_at": _TIME,
            "due_source_at": _TIME,
            "finished_at": _TIME,
            "returned_at": _TIME,
            "refused_at": _TIME,
            "snapshot": "jsonb",
            "snapshot_emitted_at": _TIME,
            "snapshot_event_id": "text",
        },
    ),
    (
        "newest_step",
        "excluded.latest_step_event_id IS NOT NULL AND (d.latest_step_at IS NULL"
        " OR (d.latest_step_at, d.latest_step_emitted_at, d.latest_step_event_id)"
        " < (excluded.latest_step_at, excluded.latest_step_emitted_at,"
        " excluded.latest_step_event_id))",
        {
            "latest_step_at": _TIME,
            "latest_step_emitted_at": _TIME,
            "latest_step_event_id": "text",
            "responsible": "text",
        },
    ),
    (
        "base",
        "excluded.base_due_at IS NOT NULL AND (d.base_due_at IS NULL OR d.base_seen_at IS NULL"
        " OR (excluded.base_due_at, excluded.base_seen_at) < (d.base_due_at, d.base_seen_at))",
        {"base_due_at": _TIME, "base_seen_at": _TIME},
    ),
    (
        "source",
        "excluded.source_at IS NOT NULL AND (d.source_at IS NULL"
        " OR excluded.source_at > d.source_at"
        " OR (excluded.source_at = d.source_at AND (d.source_due_at IS NULL"
        " OR d.source_seen_at IS NULL OR (excluded.source_due_at, excluded.source_seen_at)"
        " < (d.source_due_at, d.source_seen_at))))",
        {"source_at": _TIME, "source_due_at": _TIME, "source_seen_at": _TIME},
    ),
    (
        "finished",
        _LATER_MARK.format(value="finished_max", seen="finished_seen_at"),
        {"finished_max": _TIME, "finished_seen_at": _TIME},
    ),
    (
        "returned",
        _LATER_MARK.format(value="returned_max", seen="returned_seen_at"),
        {"returned_max": _TIME, "returned_seen_at": _TIME},
    ),
)
_COLUMNS = {column: kind for _, _, columns in _PARTS for column, kind in columns.items()}


def _aggregate(column: str, kind: str) -> str:
    """The one value the parts give a column (the others are NULL)."""
    if kind == "boolean":
        return f"bool_or({column})"
    if kind == "jsonb":
        return f"(array_agg({column}) FILTER (WHERE {column} IS NOT NULL))[1]"
    return f"max({column})"


# A UNION ALL of the parts and one GROUP BY, not six outer joins: the planner, expecting a
# row or two from each part (it cannot see into the batch's document), nested the joins, and
# matching 700 dossiers with 700 cost 250 ms a batch (EXPLAIN ANALYZE, bench/ingest_store.py).
_PARTS_UNITED = "\n        UNION ALL\n".join(
    "        SELECT dossier_code, "
    + ", ".join(
        column if column in columns else f"NULL::{kind} AS {column}"
        for column, kind in _COLUMNS.items()
    )
    + f" FROM {name}"
    for name, _, columns in _PARTS
)
_ROWS = ", ".join(_aggregate(column, kind) for column, kind in _COLUMNS.items())
_UPDATES = ",\n".join(
    f"            {column} = CASE WHEN {condition} THEN excluded.{column} ELSE d.{column} END"
    for _, condition, columns in _PARTS
    for column in columns
)
_ANY_CHANGE = "\n           OR ".join(f"({condition})" for _, condition, _ in _PARTS)

# The batch's event ids and dossier codes are compared as the tables' are (``COLLATE "C"``,
# shared.db.DossierCode): its sorts and the ties on the event id follow byte order, as the
# portable path's Python does, and its joins with the tables use their indexes.
_WRITE_BATCH_SQL = """
    WITH batch AS MATERIALIZED (
        SELECT * FROM jsonb_to_recordset(CAST(:events AS jsonb)) AS e(
            event_id text COLLATE "C", type text, source text, emitted_at timestamptz,
            dossier_code text COLLATE "C",
            data jsonb, status smallint, unit_code text, procedure_code text,
            procedure_name text, field_name text, channel smallint, digitised boolean,
            received_at timestamptz, due_at timestamptz, due_source_at timestamptz,
            finished_at timestamptz,
            returned_at timestamptz, refused_at timestamptz, step_at timestamptz, officer text,
            title text,
            department text, content text, started_at timestamptz, deadline_at timestamptz
        )
    ), fresh AS (
        INSERT INTO events (event_id, type, source, emitted_at, dossier_code, data, ingested_at)
        SELECT b.event_id, b.type, b.source, b.emitted_at, b.dossier_code, b.data, :now
        FROM batch AS b
        ON CONFLICT (event_id) DO NOTHING
        RETURNING event_id
    ), new_events AS (
        SELECT b.* FROM batch AS b JOIN fresh ON fresh.event_id = b.event_id
    ), steps AS (
        INSERT INTO progress_steps (event_id, dossier_code, step_at, emitted_at, officer,
                                    status, title, department, content, started_at,
                                    deadline_at)
        SELECT n.event_id, n.dossier_code, n.step_at, n.emitted_at, n.officer, n.status,
               n.title, n.department, n.content, n.started_at, n.deadline_at
        FROM new_events AS n
        WHERE n.type = 'dossier.progress'
    ), status_seen AS (
        INSERT INTO dossier_status_seen AS s (dossier_code, status, first_emitted_at)
        SELECT n.dossier_code, n.status, min(n.emitted_at)
        FROM new_events AS n
        WHERE n.type = 'dossier.snapshot' AND n.status IN (7, 8, 9)
        GROUP BY n.dossier_code, n.status
        ON CONFLICT (dossier_code, status) DO UPDATE
        SET first_emitted_at = excluded.first_emitted_at
        WHERE excluded.first_emitted_at < s.first_emitted_at
    ), stale AS (
        SELECT n.event_id
        FROM new_events AS n JOIN dossiers AS d ON d.code = n.dossier_code
        WHERE n.type = 'dossier.snapshot'
          AND (n.emitted_at, n.event_id) < (d.snapshot_emitted_at, d.snapshot_event_id)
    ), snapshots AS (
        SELECT * FROM new_events WHERE type = 'dossier.snapshot'
    ), newest_snapshot AS (
        SELECT DISTINCT ON (dossier_code)
               dossier_code, status, unit_code, procedure_code, procedure_name, field_name,
               channel, digitised, received_at, due_at, due_source_at, finished_at,
               returned_at, refused_at, data AS snapshot, emitted_at AS snapshot_emitted_at,
               event_id AS snapshot_event_id
        FROM snapshots
        ORDER BY dossier_code, emitted_at DESC, event_id DESC
    ), newest_step AS (
        SELECT DISTINCT ON (dossier_code)
               dossier_code, step_at AS latest_step_at, emitted_at AS latest_step_emitted_at,
               event_id AS latest_step_event_id, officer AS responsible
        FROM new_events
        WHERE type = 'dossier.progress'
        ORDER BY dossier_code, step_at DESC, emitted_at DESC, event_id DESC
    ), base AS (
        SELECT DISTINCT ON (dossier_code)
               dossier_code, due_at AS base_due_at, emitted_at AS base_seen_at
        FROM snapshots
        WHERE due_at IS NOT NULL AND due_source_at IS NULL
        ORDER BY dossier_code, due_at, emitted_at
    ), source AS (
        SELECT DISTINCT ON (dossier_code)
               dossier_code, due_source_at AS source_at, due_at AS source_due_at,
               emitted_at AS source_seen_at
        FROM snapshots
        WHERE due_at IS NOT NULL AND due_source_at IS NOT NULL
        ORDER BY dossier_code, due_source_at DESC, due_at, emitted_at
    ), finished AS (
        SELECT DISTINCT ON (dossier_code)
               dossier_code, finished_at AS finished_max, emitted_at AS finished_seen_at
        FROM snapshots
        WHERE finished_at IS NOT NULL
        ORDER BY dossier_code, finished_at DESC, emitted_at
    ), returned AS (
        SELECT DISTINCT ON (dossier_code)
               dossier_code, returned_at AS returned_max, emitted_at AS returned_seen_at
        FROM snapshots
        WHERE returned_at IS NOT NULL
        ORDER BY dossier_code, returned_at DESC, emitted_at
    ), parts AS (
{parts}
    ), upserted AS (
        INSERT INTO dossiers AS d (code, {columns})
        SELECT dossier_code, {rows}
        FROM parts
        GROUP BY dossier_code
        ORDER BY dossier_code
        ON CONFLICT (code) DO UPDATE SET
{updates}
        WHERE {any_change}
    )
    SELECT ARRAY(SELECT event_id FROM fresh) AS fresh, ARRAY(SELECT event_id FROM stale) AS stale
"""
# The batch's document and the CTEs that hold it (the batch, its new events, their snapshots)
# come to about 10 MB at 5,000 events: with PostgreSQL's default 4 MB each spilled to temporary
# files, 9 MB written and read back per batch (EXPLAIN ANALYZE, bench/ingest_store.py). In memory
# the statement takes 10 % less of PostgreSQL's time; a bigger batch still spills past this.
BATCH_WORK_MEM = text("SET LOCAL work_mem = '64MB'")

WRITE_BATCH = text(
    _WRITE_BATCH_SQL.format(
        parts=_PARTS_UNITED,
        columns=", ".join(_COLUMNS),
        rows=_ROWS,
        updates=_UPDATES,
        any_change=_ANY_CHANGE,
    )
)


@dataclass(slots=True)
class PgBatch:
    """The batch as one JSON document for :data:`WRITE_BATCH`."""

    document: str


@dataclass(slots=True)
class PgBatchBuilder:
    """Gathers a batch's rows one (already deduplicated) event at a time."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, event: DossierEvent) -> None:
        if event.is_snapshot:
            row = snapshot_columns(event)
            del row["code"], row["snapshot"], row["snapshot_emitted_at"], row["snapshot_event_id"]
        else:
            row = step_columns(event)
        self.rows.append({**row, **event_columns(event)})

    def build(self) -> PgBatch:
        """One JSON document written by orjson in C: asyncpg encodes an array element by
        element (a timestamp costs it over a microsecond), and PostgreSQL parses the document
        once into ``jsonb``, from which each event's data is stored without parsing it again
        (a snapshot's data twice: in the log and as the dossier's state)."""
        return PgBatch(document=_json(self.rows))


def _json(rows: Sequence[dict[str, Any]]) -> str:
    return orjson.dumps(rows).decode()


async def write_batch(
    connection: AsyncConnection, batch: PgBatch, *, now: datetime
) -> tuple[list[str], list[str]]:
    """Log the events, insert the new ones' steps, upsert the newest new snapshot per dossier.

    Returns the ids that were new, and the new snapshots older than their dossier's state
    before this batch (kept in the log, never applied: stale).
    """
    await connection.execute(BATCH_WORK_MEM)
    answer = await connection.execute(WRITE_BATCH, {"events": batch.document, "now": now})
    fresh, stale = answer.one()
    return fresh, stale
