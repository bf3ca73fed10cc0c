"""PostgreSQL's fast path for the ingest write path: a batch in one statement, then the summary.

SQLAlchemy's executemany turns every row into bound parameters one by one, and asyncpg encodes
an array parameter element by element (a timestamp costs it over a microsecond); at thousands
of events a second that work dominated the consumer's CPU. Here a batch travels as one JSON
document written by orjson, which PostgreSQL parses once into ``jsonb`` and unrolls
(``jsonb_to_recordset``) inside the caller's transaction.

The document is built event by event while the batch is parsed (:class:`PgBatchBuilder`),
before its transaction begins: the consumer does that while the previous batch is in the
database, and the transaction itself only waits for PostgreSQL. That is why the main statement
needs nothing computed from another one's answer: it logs the events and, joined on the ids
that were new, inserts their progress steps and upserts the newest snapshot of each dossier,
reporting which ids were new and which snapshots were older than the stored state, and keeps
when each dossier first showed a closing status (7, 8, 9). Only the step summary follows (it
updates the same dossier rows, which one statement may not do twice).

The semantics are exactly those of the portable path in ``service.py`` — the property tests
run both against the same expectations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.ingest.rows import event_columns, snapshot_columns, snapshot_dates, step_columns
from shared.date_marks import SnapshotDates
from shared.events import DossierEvent

_WRITE_BATCH = text(
    """
    WITH batch AS MATERIALIZED (
        SELECT * FROM jsonb_to_recordset(CAST(:events AS jsonb)) AS e(
            event_id text, type text, source text, emitted_at timestamptz, dossier_code text,
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
    ), upserted AS (
        INSERT INTO dossiers AS d (code, status, unit_code, procedure_code, procedure_name,
                                   field_name, channel, digitised, received_at, due_at,
                                   due_source_at, finished_at, returned_at, refused_at,
                                   snapshot, snapshot_emitted_at, snapshot_event_id)
        SELECT DISTINCT ON (n.dossier_code)
               n.dossier_code, n.status, n.unit_code, n.procedure_code, n.procedure_name,
               n.field_name, n.channel, n.digitised, n.received_at, n.due_at, n.due_source_at,
               n.finished_at, n.returned_at, n.refused_at, n.data, n.emitted_at, n.event_id
        FROM new_events AS n
        WHERE n.type = 'dossier.snapshot'
        ORDER BY n.dossier_code, n.emitted_at DESC, n.event_id DESC
        ON CONFLICT (code) DO UPDATE SET
            status = excluded.status, unit_code = excluded.unit_code,
            procedure_code = excluded.procedure_code, procedure_name = excluded.procedure_name,
            field_name = excluded.field_name,
            channel = excluded.channel, digitised = excluded.digitised,
            received_at = excluded.received_at, due_at = excluded.due_at,
            due_source_at = excluded.due_source_at,
            finished_at = excluded.finished_at, returned_at = excluded.returned_at,
            refused_at = excluded.refused_at, snapshot = excluded.snapshot,
            snapshot_emitted_at = excluded.snapshot_emitted_at,
            snapshot_event_id = excluded.snapshot_event_id
        WHERE d.snapshot_emitted_at IS NULL
           OR (d.snapshot_emitted_at, d.snapshot_event_id)
              < (excluded.snapshot_emitted_at, excluded.snapshot_event_id)
    )
    SELECT ARRAY(SELECT event_id FROM fresh) AS fresh, ARRAY(SELECT event_id FROM stale) AS stale
    """
)

_UPSERT_STEP_SUMMARY = text(
    """
    INSERT INTO dossiers AS d (code, latest_step_at, latest_step_emitted_at,
                               latest_step_event_id, responsible)
    SELECT * FROM json_to_recordset(CAST(:rows AS json)) AS r(
        code text, latest_step_at timestamptz, latest_step_emitted_at timestamptz,
        latest_step_event_id text, responsible text
    )
    ON CONFLICT (code) DO UPDATE SET
        latest_step_at = excluded.latest_step_at,
        latest_step_emitted_at = excluded.latest_step_emitted_at,
        latest_step_event_id = excluded.latest_step_event_id,
        responsible = excluded.responsible
    WHERE d.latest_step_at IS NULL
       OR (d.latest_step_at, d.latest_step_emitted_at, d.latest_step_event_id)
          < (excluded.latest_step_at, excluded.latest_step_emitted_at,
             excluded.latest_step_event_id)
    """
)


@dataclass(slots=True)
class PgBatch:
    """The batch as one JSON document for :data:`_WRITE_BATCH`, and the step rows for the
    summary after it."""

    document: str
    steps: list[dict[str, Any]]
    # (event_id, dossier code, the dates it claims) of each snapshot: the marks of the new ones
    dates: list[tuple[str, str, SnapshotDates]] = field(default_factory=list)


@dataclass(slots=True)
class PgBatchBuilder:
    """Gathers a batch's rows one (already deduplicated) event at a time."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    dates: list[tuple[str, str, SnapshotDates]] = field(default_factory=list)

    def add(self, event: DossierEvent) -> None:
        if event.is_snapshot:
            row = snapshot_columns(event)
            self.dates.append((event.event_id, event.dossier_code, snapshot_dates(row)))
            del row["code"], row["snapshot"], row["snapshot_emitted_at"], row["snapshot_event_id"]
        else:
            row = step_columns(event)
            self.steps.append(row)
        self.rows.append({**row, **event_columns(event)})

    def build(self) -> PgBatch:
        """One JSON document written by orjson in C: asyncpg encodes an array element by
        element (a timestamp costs it over a microsecond), and PostgreSQL parses the document
        once into ``jsonb``, from which each event's data is stored without parsing it again
        (a snapshot's data twice: in the log and as the dossier's state)."""
        return PgBatch(document=_json(self.rows), steps=self.steps, dates=self.dates)


def _json(rows: Sequence[dict[str, Any]]) -> str:
    return orjson.dumps(rows).decode()


async def write_batch(
    connection: AsyncConnection, batch: PgBatch, *, now: datetime
) -> tuple[list[str], list[str]]:
    """Log the events, insert the new ones' steps, upsert the newest new snapshot per dossier.

    Returns the ids that were new, and the new snapshots older than their dossier's state
    before this batch (kept in the log, never applied: stale).
    """
    answer = await connection.execute(_WRITE_BATCH, {"events": batch.document, "now": now})
    fresh, stale = answer.one()
    return fresh, stale


async def upsert_step_summary(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    await connection.execute(_UPSERT_STEP_SUMMARY, {"rows": _json(rows)})
