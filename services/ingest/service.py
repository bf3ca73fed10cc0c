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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import insert, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from services.ingest import pg_bulk
from services.reconciler import schedule
from shared import metrics
from shared.dvcqg import effective_due_at, optional_thoi_diem
from shared.events import DossierEvent, Rejection
from shared.models import DeadLetter, Dossier, Event, ProgressStep

Outcome = Literal["stored", "duplicate", "stale"]

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
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    repeated: int = 0  # occurrences of an event_id already earlier in the same batch
    touched_dossiers: set[str] = field(default_factory=set)
    newest_by_source: dict[str, datetime] = field(default_factory=dict)
    dossier_of: dict[str, str] = field(default_factory=dict)

    def count(self, outcome: Outcome) -> int:
        """Messages with ``outcome``; a repeat inside the batch counts as a duplicate."""
        found = sum(1 for value in self.outcomes.values() if value == outcome)
        return found + self.repeated if outcome == "duplicate" else found


def _insert(connection: AsyncConnection, table: Any) -> Any:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


_newest_seen: dict[str, float] = {}


def log_outcomes(result: BatchResult, transport: str) -> None:
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


def record_newest_events(result: BatchResult) -> None:
    """After a commit: move each source's newest-event gauge forward (never back)."""
    for source, moment in result.newest_by_source.items():
        stamp = moment.timestamp()
        if stamp > _newest_seen.get(source, 0.0):
            _newest_seen[source] = stamp
            metrics.INGEST_NEWEST_EVENT.labels(source).set(stamp)


def _moment(event: DossierEvent, name: str) -> datetime | None:
    """A date field of the event: parsed once when the event was checked."""
    moment = event.moments.get(name)
    return moment if moment is not None else optional_thoi_diem(event.data, name)


def snapshot_columns(event: DossierEvent) -> dict[str, Any]:
    """The dossier columns a snapshot determines (pure)."""
    data = event.data
    digitised = data.get("HoSoCoThanhPhanSoHoa")
    return {
        "code": event.dossier_code,
        "status": data["TrangThaiHoSo"],
        "unit_code": data["DonViXuLy"],
        "procedure_code": data["MaTTHC"],
        "procedure_name": data.get("TenTTHC"),
        "channel": data["KenhThucHien"],
        "digitised": None if digitised is None else digitised == 1,
        "received_at": _moment(event, "NgayTiepNhan"),
        "due_at": effective_due_at(data, promised=_moment(event, "NgayHenTra")),
        "finished_at": _moment(event, "NgayKetThucXuLy"),
        "returned_at": _moment(event, "NgayTra"),
        "refused_at": _moment(event, "NgayTuChoi"),
        "snapshot": data,
        "snapshot_emitted_at": event.emitted_at,
        "snapshot_event_id": event.event_id,
    }


def step_columns(event: DossierEvent) -> dict[str, Any]:
    data = event.data
    return {
        "event_id": event.event_id,
        "dossier_code": event.dossier_code,
        "step_at": _moment(event, "ThoiDiemXuLy"),
        "emitted_at": event.emitted_at,
        "officer": data["NguoiXuLy"],
        "status": data["TrangThai"],
        "title": data.get("ChucDanh"),
        "department": data.get("PhongBanXuLy"),
        "content": data.get("NoiDungXuLy"),
        "started_at": _moment(event, "NgayBatDau"),
        "deadline_at": _moment(event, "NgayKetThucTheoQuyDinh"),
    }


def _newest_per_dossier(rows: Iterable[dict[str, Any]], key: Any) -> dict[str, dict[str, Any]]:
    newest: dict[str, dict[str, Any]] = {}
    for row in rows:
        current = newest.get(row["code"])
        if current is None or key(row) > key(current):
            newest[row["code"]] = row
    return newest


def _is_postgresql(connection: AsyncConnection) -> bool:
    return connection.dialect.name == "postgresql"


async def store_events(
    connection: AsyncConnection, events: Sequence[DossierEvent], *, now: datetime
) -> BatchResult:
    """Apply a batch of checked events; the caller owns the transaction.

    Outcomes: ``duplicate`` for an ``event_id`` seen before (also earlier in the batch);
    ``stale`` for a snapshot older than the dossier's state before this batch (it arrived late:
    kept in the log, never applied); ``stored`` otherwise.
    """
    result = BatchResult()
    unique: dict[str, DossierEvent] = {}
    for event in events:
        if event.event_id in unique:
            result.repeated += 1
        else:
            unique[event.event_id] = event
    if not unique:
        return result

    new_ids, texts = await _insert_event_log(connection, list(unique.values()), now=now)
    for event_id, event in unique.items():
        result.outcomes[event_id] = "stored" if event_id in new_ids else "duplicate"
        result.dossier_of[event_id] = event.dossier_code
    fresh = [unique[event_id] for event_id in unique if event_id in new_ids]
    snapshots = [snapshot_columns(event) for event in fresh if event.is_snapshot]
    steps = [step_columns(event) for event in fresh if not event.is_snapshot]

    if snapshots:
        current = await _current_snapshots(connection, {row["code"] for row in snapshots})
        timely = []
        for row in snapshots:
            known = current.get(row["code"])
            if known is not None and _snapshot_order(row) < known:
                result.outcomes[row["snapshot_event_id"]] = "stale"
            else:
                timely.append(row)
        if timely:
            newest = _newest_per_dossier(timely, _snapshot_order)
            await _upsert_snapshots(connection, list(newest.values()), texts)
    if steps:
        await _apply_steps(connection, steps)
    result.touched_dossiers = {event.dossier_code for event in fresh}
    for event in fresh:
        newest = result.newest_by_source.get(event.source)
        if newest is None or event.emitted_at > newest:
            result.newest_by_source[event.source] = event.emitted_at
    await schedule.mark_for_reconcile(connection, result.touched_dossiers, at=now)
    return result


def _snapshot_order(row: dict[str, Any]) -> tuple[datetime, str]:
    return (row["snapshot_emitted_at"], row["snapshot_event_id"])


async def _insert_event_log(
    connection: AsyncConnection, events: Sequence[DossierEvent], *, now: datetime
) -> tuple[set[str], dict[str, str]]:
    """The new event ids, and (PostgreSQL) each event's data already serialised as JSON."""
    if _is_postgresql(connection):
        return await pg_bulk.insert_events(connection, events, now=now)
    rows = [
        {
            "event_id": event.event_id,
            "type": event.type,
            "source": event.source,
            "emitted_at": event.emitted_at,
            "dossier_code": event.dossier_code,
            "data": event.data,
            "ingested_at": now,
        }
        for event in events
    ]
    statement = (
        _insert(connection, Event)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(Event.event_id)
    )
    returned = await connection.execute(statement, rows)
    return set(returned.scalars().all()), {}


async def _current_snapshots(
    connection: AsyncConnection, codes: set[str]
) -> dict[str, tuple[datetime, str]]:
    """The (``emitted_at``, ``event_id``) of each dossier's stored snapshot, before this batch."""
    if _is_postgresql(connection):
        return await pg_bulk.current_snapshots(connection, sorted(codes))
    found = await connection.execute(
        select(Dossier.code, Dossier.snapshot_emitted_at, Dossier.snapshot_event_id).where(
            Dossier.code.in_(codes), Dossier.snapshot_emitted_at.is_not(None)
        )
    )
    return {code: (emitted_at, event_id) for code, emitted_at, event_id in found.all()}


async def _upsert_snapshots(
    connection: AsyncConnection, rows: Sequence[dict[str, Any]], texts: Mapping[str, str]
) -> None:
    """Upsert one snapshot per dossier unless a newer one is stored (guarded in SQL too)."""
    if _is_postgresql(connection):
        await pg_bulk.upsert_snapshots(connection, rows, texts)
        return
    statement = _insert(connection, Dossier)
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
    def order(row: dict[str, Any]) -> tuple[datetime, datetime, str]:
        return (row["step_at"], row["emitted_at"], row["event_id"])

    newest: dict[str, dict[str, Any]] = {}
    for row in step_rows:
        current = newest.get(row["dossier_code"])
        if current is None or order(row) > order(current):
            newest[row["dossier_code"]] = row
    summary = [
        {
            "code": code,
            "latest_step_at": row["step_at"],
            "latest_step_emitted_at": row["emitted_at"],
            "latest_step_event_id": row["event_id"],
            "responsible": row["officer"],
        }
        for code, row in newest.items()
    ]
    if _is_postgresql(connection):
        await pg_bulk.insert_steps(connection, step_rows)
        await pg_bulk.upsert_step_summary(connection, summary)
        return
    await connection.execute(insert(ProgressStep), step_rows)
    statement = _insert(connection, Dossier)
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
        _insert(connection, DeadLetter)
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
