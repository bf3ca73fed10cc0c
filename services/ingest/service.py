"""The write path of ingest: store checked events idempotently, in the caller's transaction.

Every statement is set-based (one per table per batch) so that a replayed backlog of thousands
of events costs a handful of round trips. Effects are idempotent and order-independent:
- the event log keeps each ``event_id`` once (``ON CONFLICT DO NOTHING``);
- a dossier's state is its newest snapshot by (``emitted_at``, ``event_id``): the upsert only
  overwrites an older one;
- the responsible officer follows the newest step by (``ThoiDiemXuLy``, ``emitted_at``,
  ``event_id``), guarded the same way.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import insert, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from services.ingest import marks, pg_bulk
from services.ingest.rows import (
    event_columns,
    newest_snapshots,
    snapshot_columns,
    snapshot_dates,
    snapshot_order,
    status_seen,
    step_columns,
    step_summary,
)
from services.reconciler import schedule
from shared import metrics
from shared.date_marks import SnapshotDates
from shared.db import insert_for
from shared.events import DossierEvent, Rejection
from shared.models import DeadLetter, Dossier, DossierStatusSeen, Event, ProgressStep

EventOutcome = Literal["stored", "duplicate", "stale"]

log = logging.getLogger("doisoat.ingest")


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """A Kafka message that could not be used, with where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    payload: bytes
    rejection: Rejection


@dataclass(slots=True)
class BatchResult:
    outcomes: dict[str, EventOutcome] = field(default_factory=dict)
    repeated: int = 0  # occurrences of an event_id already earlier in the same batch
    touched_dossiers: set[str] = field(default_factory=set)
    newest_by_source: dict[str, datetime] = field(default_factory=dict)
    dossier_of: dict[str, str] = field(default_factory=dict)

    def count(self, outcome: EventOutcome) -> int:
        """Messages with ``outcome``; a repeat inside the batch counts as a duplicate."""
        found = sum(1 for value in self.outcomes.values() if value == outcome)
        return found + self.repeated if outcome == "duplicate" else found


_newest_seen: dict[str, float] = {}


def record_batch(
    result: BatchResult,
    *,
    transport: str,
    size: int,
    seconds: float,
    refused: int = 0,
    dead: Sequence[DeadLetterRecord] = (),
) -> None:
    """After a commit, the one place a batch is counted, whichever transport brought it.

    ``size`` is every message of the batch (repeats, refusals and dead letters included).
    """
    for outcome in ("stored", "duplicate", "stale"):
        count = result.count(outcome)
        if count:
            metrics.INGEST_EVENTS.labels(outcome=outcome).inc(count)
    if refused:
        metrics.INGEST_EVENTS.labels(outcome="refused").inc(refused)
    for record in dead:
        metrics.INGEST_EVENTS.labels(outcome="dead_letter").inc()
        metrics.INGEST_DEAD_LETTERS.labels(reason=record.rejection.reason).inc()
        log.warning(
            "dead letter",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "reason": record.rejection.reason,
            },
        )
    metrics.INGEST_BATCH_EVENTS.labels(transport=transport).observe(size)
    metrics.INGEST_BATCH_SECONDS.labels(transport=transport).observe(seconds)
    _record_newest_events(result)
    _log_outcomes(result, transport)


def _log_outcomes(result: BatchResult, transport: str) -> None:
    """One log line per event (at debug level: a backlog replays thousands a second)."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    for event_id, outcome in result.outcomes.items():
        log.debug(
            "event " + outcome,
            extra={
                "event_id": event_id,
                "dossier_code": result.dossier_of.get(event_id),
                "transport": transport,
            },
        )


def _record_newest_events(result: BatchResult) -> None:
    """Move each source's newest-event gauge forward (never back)."""
    for source, moment in result.newest_by_source.items():
        stamp = moment.timestamp()
        if stamp > _newest_seen.get(source, 0.0):
            _newest_seen[source] = stamp
            metrics.INGEST_NEWEST_EVENT.labels(source).set(stamp)


@dataclass(slots=True)
class PendingBatch:
    """A batch's events without repeats, and (PostgreSQL) its statements' parameters."""

    unique: dict[str, DossierEvent]
    repeated: int
    postgresql: pg_bulk.PgBatch | None


class BatchBuilder:
    """Collects a batch event by event: the consumer adds each one as it is parsed, so the
    CPU work of the write path is done before the transaction, while the previous batch is in
    the database."""

    def __init__(self, *, postgresql: bool) -> None:
        self._unique: dict[str, DossierEvent] = {}
        self._repeated = 0
        self._postgresql = pg_bulk.PgBatchBuilder() if postgresql else None

    def add(self, event: DossierEvent) -> None:
        if event.event_id in self._unique:
            self._repeated += 1
            return
        self._unique[event.event_id] = event
        if self._postgresql is not None:
            self._postgresql.add(event)

    def build(self) -> PendingBatch:
        postgresql = self._postgresql.build() if self._postgresql is not None else None
        return PendingBatch(self._unique, self._repeated, postgresql)


def _is_postgresql(connection: AsyncConnection) -> bool:
    return connection.dialect.name == "postgresql"


def pending_batch(events: Iterable[DossierEvent], *, postgresql: bool) -> PendingBatch:
    builder = BatchBuilder(postgresql=postgresql)
    for event in events:
        builder.add(event)
    return builder.build()


async def store_events(
    connection: AsyncConnection, events: Sequence[DossierEvent], *, now: datetime
) -> BatchResult:
    """Apply a batch of checked events; the caller owns the transaction.

    Outcomes: ``duplicate`` for an ``event_id`` seen before (also earlier in the batch);
    ``stale`` for a snapshot older than the dossier's state before this batch (it arrived late:
    kept in the log, never applied); ``stored`` otherwise.
    """
    batch = pending_batch(events, postgresql=_is_postgresql(connection))
    return await store_pending(connection, batch, now=now)


async def store_pending(
    connection: AsyncConnection, batch: PendingBatch, *, now: datetime
) -> BatchResult:
    """:func:`store_events` for a batch whose parameters were built beforehand."""
    result = BatchResult(repeated=batch.repeated)
    if not batch.unique:
        return result
    if batch.postgresql is not None:
        fresh_ids, stale = await pg_bulk.write_batch(connection, batch.postgresql, now=now)
        fresh = set(fresh_ids)
    else:
        fresh, stale = await _write_portably(connection, list(batch.unique.values()), now=now)
    for event_id, event in batch.unique.items():
        result.outcomes[event_id] = "stored" if event_id in fresh else "duplicate"
        result.dossier_of[event_id] = event.dossier_code
    for event_id in stale:
        result.outcomes[event_id] = "stale"
    fresh_events = [batch.unique[event_id] for event_id in fresh]
    result.touched_dossiers = {event.dossier_code for event in fresh_events}
    for event in fresh_events:
        newest = result.newest_by_source.get(event.source)
        if newest is None or event.emitted_at > newest:
            result.newest_by_source[event.source] = event.emitted_at
    await schedule.mark_for_reconcile(connection, result.touched_dossiers, at=now)
    return result


async def _write_portably(
    connection: AsyncConnection, events: Sequence[DossierEvent], *, now: datetime
) -> tuple[set[str], list[str]]:
    """The write path through SQLAlchemy Core, for any backend: the new ids and the stale ones."""
    fresh = await _insert_event_log(connection, events, now=now)
    new_events = [event for event in events if event.event_id in fresh]
    snapshots = [snapshot_columns(event) for event in new_events if event.is_snapshot]
    steps = [step_columns(event) for event in new_events if not event.is_snapshot]
    stale: list[str] = []
    if snapshots:
        current = await _current_snapshots(connection, {row["code"] for row in snapshots})
        timely = []
        for row in snapshots:
            known = current.get(row["code"])
            if known is not None and snapshot_order(row) < known:
                stale.append(row["snapshot_event_id"])
            else:
                timely.append(row)
        if timely:
            await _upsert_snapshots(connection, newest_snapshots(timely))
    if steps:
        await _apply_steps(connection, steps)
    await _record_status_seen(connection, status_seen(snapshots))
    new_dates: dict[str, list[SnapshotDates]] = defaultdict(list)
    for row in snapshots:
        new_dates[row["code"]].append(snapshot_dates(row))
    await marks.record(connection, new_dates)
    return fresh, stale


async def _record_status_seen(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """When each dossier first showed a closing status: the earliest snapshot wins."""
    if not rows:
        return
    statement = insert_for(connection, DossierStatusSeen)
    await connection.execute(
        statement.on_conflict_do_update(
            index_elements=["dossier_code", "status"],
            set_={"first_emitted_at": statement.excluded.first_emitted_at},
            where=statement.excluded.first_emitted_at < DossierStatusSeen.first_emitted_at,
        ),
        rows,
    )


async def _insert_event_log(
    connection: AsyncConnection, events: Sequence[DossierEvent], *, now: datetime
) -> set[str]:
    rows = [{**event_columns(event), "ingested_at": now} for event in events]
    statement = (
        insert_for(connection, Event)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(Event.event_id)
    )
    returned = await connection.execute(statement, rows)
    return set(returned.scalars().all())


async def _current_snapshots(
    connection: AsyncConnection, codes: set[str]
) -> dict[str, tuple[datetime, str]]:
    """The (``emitted_at``, ``event_id``) of each dossier's stored snapshot, before this batch."""
    found = await connection.execute(
        select(Dossier.code, Dossier.snapshot_emitted_at, Dossier.snapshot_event_id).where(
            Dossier.code.in_(codes), Dossier.snapshot_emitted_at.is_not(None)
        )
    )
    return {
        code: (emitted_at, event_id or "")
        for code, emitted_at, event_id in found.all()
        if emitted_at is not None
    }


async def _upsert_snapshots(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Upsert one snapshot per dossier unless a newer one is stored (guarded in SQL too)."""
    statement = insert_for(connection, Dossier)
    excluded = statement.excluded
    updated = {name: getattr(excluded, name) for name in rows[0] if name != "code"}
    statement = statement.on_conflict_do_update(
        index_elements=["code"],
        set_=updated,
        where=or_(
            Dossier.snapshot_emitted_at.is_(None),
            tuple_(Dossier.snapshot_emitted_at, Dossier.snapshot_event_id)
            < tuple_(excluded.snapshot_emitted_at, excluded.snapshot_event_id),
        ),
    )
    await connection.execute(statement, rows)


def _step_order(table: Any) -> Any:
    return tuple_(table.latest_step_at, table.latest_step_emitted_at, table.latest_step_event_id)


async def _apply_steps(connection: AsyncConnection, step_rows: Sequence[dict[str, Any]]) -> None:
    await connection.execute(insert(ProgressStep), step_rows)
    summary = step_summary(step_rows)
    statement = insert_for(connection, Dossier)
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["code"],
        set_={name: getattr(excluded, name) for name in summary[0] if name != "code"},
        where=or_(
            Dossier.latest_step_at.is_(None),
            _step_order(Dossier) < _step_order(excluded),
        ),
    )
    await connection.execute(statement, summary)


async def store_dead_letters(
    connection: AsyncConnection, records: Sequence[DeadLetterRecord], *, now: datetime
) -> int:
    """Keep unusable messages; a redelivered one (same topic/partition/offset) is kept once."""
    if not records:
        return 0
    rows = [
        {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": record.key,
            "payload": record.payload,
            "reason": record.rejection.reason,
            "detail": record.rejection.detail,
            "received_at": now,
        }
        for record in records
    ]
    statement = (
        insert_for(connection, DeadLetter)
        .on_conflict_do_nothing(index_elements=["topic", "partition", "offset"])
        .returning(DeadLetter.id)
    )
    returned = await connection.execute(statement, rows)
    return len(returned.scalars().all())


async def known_units_of(
    connection: AsyncConnection, codes: Iterable[str]
) -> dict[str, str | None]:
    """The stored ``DonViXuLy`` of each dossier code that doisoat already knows."""
    wanted = list(set(codes))
    if not wanted:
        return {}
    rows = await connection.execute(
        select(Dossier.code, Dossier.unit_code).where(Dossier.code.in_(wanted))
    )
    return {code: unit for code, unit in rows.all()}
