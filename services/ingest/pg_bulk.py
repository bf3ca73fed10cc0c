"""PostgreSQL's fast path for the ingest write path: one statement per table per batch.

SQLAlchemy's executemany turns every row into bound parameters one by one; at thousands of
events a second that per-row work dominated the consumer's CPU. Here a batch travels as one
array per column (``unnest``) or, for rows of plain columns, as one JSON document
(``json_to_recordset``), and PostgreSQL unrolls it inside the caller's transaction. The
semantics are exactly those of the portable path in ``service.py`` — the property tests run
both against the same expectations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.events import DossierEvent

_INSERT_EVENTS = text(
    """
    INSERT INTO events (event_id, type, source, emitted_at, dossier_code, data, ingested_at)
    SELECT u.event_id, u.type, u.source, u.emitted_at, u.dossier_code, u.data::jsonb, :now
    FROM unnest(
        CAST(:event_ids AS text[]), CAST(:types AS text[]), CAST(:sources AS text[]),
        CAST(:emitted AS timestamptz[]), CAST(:codes AS text[]), CAST(:datas AS text[])
    ) AS u(event_id, type, source, emitted_at, dossier_code, data)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
    """
)

_INSERT_STEPS = text(
    """
    INSERT INTO progress_steps (event_id, dossier_code, step_at, emitted_at, officer, status,
                                title, department, content, started_at, deadline_at)
    SELECT * FROM json_to_recordset(CAST(:rows AS json)) AS r(
        event_id text, dossier_code text, step_at timestamptz, emitted_at timestamptz,
        officer text, status smallint, title text, department text, content text,
        started_at timestamptz, deadline_at timestamptz
    )
    """
)

_UPSERT_SNAPSHOTS = text(
    """
    INSERT INTO dossiers AS d (code, status, unit_code, procedure_code, procedure_name, channel,
                               digitised, received_at, due_at, finished_at, returned_at,
                               refused_at, snapshot, snapshot_emitted_at, snapshot_event_id)
    SELECT u.code, u.status, u.unit_code, u.procedure_code, u.procedure_name, u.channel,
           u.digitised, u.received_at, u.due_at, u.finished_at, u.returned_at, u.refused_at,
           u.snapshot::jsonb, u.snapshot_emitted_at, u.snapshot_event_id
    FROM unnest(
        CAST(:code AS text[]), CAST(:status AS smallint[]), CAST(:unit_code AS text[]),
        CAST(:procedure_code AS text[]), CAST(:procedure_name AS text[]),
        CAST(:channel AS smallint[]), CAST(:digitised AS boolean[]),
        CAST(:received_at AS timestamptz[]), CAST(:due_at AS timestamptz[]),
        CAST(:finished_at AS timestamptz[]), CAST(:returned_at AS timestamptz[]),
        CAST(:refused_at AS timestamptz[]), CAST(:snapshot AS text[]),
        CAST(:snapshot_emitted_at AS timestamptz[]), CAST(:snapshot_event_id AS text[])
    ) AS u(code, status, unit_code, procedure_code, procedure_name, channel, digitised,
           received_at, due_at, finished_at, returned_at, refused_at, snapshot,
           snapshot_emitted_at, snapshot_event_id)
    ON CONFLICT (code) DO UPDATE SET
        status = excluded.status, unit_code = excluded.unit_code,
        procedure_code = excluded.procedure_code, procedure_name = excluded.procedure_name,
        channel = excluded.channel, digitised = excluded.digitised,
        received_at = excluded.received_at, due_at = excluded.due_at,
        finished_at = excluded.finished_at, returned_at = excluded.returned_at,
        refused_at = excluded.refused_at, snapshot = excluded.snapshot,
        snapshot_emitted_at = excluded.snapshot_emitted_at,
        snapshot_event_id = excluded.snapshot_event_id
    WHERE d.snapshot_emitted_at IS NULL
       OR (d.snapshot_emitted_at, d.snapshot_event_id)
          < (excluded.snapshot_emitted_at, excluded.snapshot_event_id)
    RETURNING d.snapshot_event_id
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

_CURRENT_SNAPSHOTS = text(
    """
    SELECT code, snapshot_emitted_at, snapshot_event_id FROM dossiers
    WHERE code = ANY(CAST(:codes AS text[])) AND snapshot_emitted_at IS NOT NULL
    """
)


def _json_rows(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Rows of plain columns as one JSON document for ``json_to_recordset``: orjson writes it
    in C, where asyncpg would encode an array per column element by element, with an ABC check
    on each. (The tables whose rows carry a JSON document stay on arrays: unrolling a nested
    document from JSON would parse it twice in PostgreSQL.)"""
    return {"rows": orjson.dumps(rows).decode()}


def _columns(rows: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name in names}


async def insert_events(
    connection: AsyncConnection, events: Sequence[DossierEvent], *, now: datetime
) -> tuple[set[str], dict[str, str]]:
    """Log the events; returns the ids that were new and each event's data as JSON text
    (serialised once: a snapshot's document is stored again as the dossier's state)."""
    texts = {event.event_id: orjson.dumps(event.data).decode() for event in events}
    returned = await connection.execute(
        _INSERT_EVENTS,
        {
            "event_ids": list(texts),
            "types": [event.type for event in events],
            "sources": [event.source for event in events],
            "emitted": [event.emitted_at for event in events],
            "codes": [event.dossier_code for event in events],
            "datas": list(texts.values()),
            "now": now,
        },
    )
    return set(returned.scalars().all()), texts


async def insert_steps(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    await connection.execute(_INSERT_STEPS, _json_rows(rows))


async def current_snapshots(
    connection: AsyncConnection, codes: Sequence[str]
) -> dict[str, tuple[datetime, str]]:
    found = await connection.execute(_CURRENT_SNAPSHOTS, {"codes": list(codes)})
    return {code: (emitted_at, event_id) for code, emitted_at, event_id in found.all()}


async def upsert_snapshots(
    connection: AsyncConnection, rows: Sequence[dict[str, Any]], texts: Mapping[str, str]
) -> set[str]:
    """``texts``: the JSON of each snapshot by event id, as :func:`insert_events` made it."""
    columns = _columns(rows, list(rows[0]))
    columns["snapshot"] = [texts[event_id] for event_id in columns["snapshot_event_id"]]
    returned = await connection.execute(_UPSERT_SNAPSHOTS, columns)
    return set(returned.scalars().all())


async def upsert_step_summary(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    await connection.execute(_UPSERT_STEP_SUMMARY, _json_rows(rows))
