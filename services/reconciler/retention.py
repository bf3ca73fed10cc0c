"""Retention of applicants' personal data (Nghị định 13/2023/NĐ-CP; issue 6, point 3).

Once a dossier has been closed (``TrangThaiHoSo`` 3, 7, 8 or 10) for more than the retention
period, its applicant's name and identity document number (:data:`PERSONAL_FIELDS`) are removed
from the dossier's stored snapshot *and* from every event of that dossier in the raw event log.
Nothing else changes: status, dates, procedure, steps and discrepancies stay as they were, so
KPIs and history keep working.

How a dossier's closing moment is read: ``NgayTra`` for a returned dossier (10), ``NgayTuChoi``
for a refused one (3), and the stored snapshot's ``emitted_at`` otherwise (withdrawn 7, stopped
8, or a returned/refused dossier that carries no such date).

The purge is set-based and runs in chunks of ``batch`` dossiers (keyset on the dossier code),
each chunk being three statements: pick the candidates, strip the dossiers' snapshots, strip
their events. JSON is edited in the database — ``jsonb - text[]`` on PostgreSQL,
``json_remove`` on SQLite — so the payloads never travel to Python (nor into a log line).

What marks a row as done is the absence of the personal keys themselves: a candidate is a
closed, old-enough dossier whose snapshot *or* any of whose events still holds one of them. The
purged snapshot also records when it was purged (``"_personal_data_purged_at"``, ISO 8601 UTC)
as evidence for the data controller; no schema change is needed. Running the purge twice
changes nothing the second time. Open dossiers are never touched, however old.

Late deliveries: ingest is not changed. A snapshot that arrives after the purge carrying the
personal fields again (a late redelivery under a new ``event_id``, or the source re-sending
the dossier) is stored as usual — in the event log, and in the dossier's snapshot if it is
the newest — so the fields are back until the next purge run removes them again (the sweep
runs it every hour, ``doisoat purge`` on demand). A redelivery under an ``event_id`` already
stored is a duplicate and is never written at all.
"""

from __future__ import annotations

import calendar
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    Text,
    and_,
    cast,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.clock import VN_TZ, Clock
from shared.db import unit_of_work
from shared.dvcqg import Status
from shared.models import Dossier, Event
from shared.privacy import PERSONAL_FIELDS

log = logging.getLogger("doisoat.retention")

PURGED_MARKER = "_personal_data_purged_at"
DEFAULT_BATCH = 1000
DEFAULT_SWEEP_EVERY = timedelta(hours=1)

# Constants of this module only (never user input): safe to inline as SQL literals.
_PG_PERSONAL_KEYS: ColumnElement[Any] = literal_column(
    "ARRAY[" + ", ".join(f"'{name}'" for name in PERSONAL_FIELDS) + "]::text[]"
)
_SQLITE_PERSONAL_PATHS = tuple(f"$.{name}" for name in PERSONAL_FIELDS)


@dataclass(slots=True)
class PurgeResult:
    """Dossiers whose personal data was removed (snapshot or log), and event rows rewritten."""

    dossiers: int = 0
    events: int = 0
    cutoff: datetime | None = None

    def add(self, dossiers: int, events: int) -> None:
        self.dossiers += dossiers
        self.events += events


# ---- what is old enough ---------------------------------------------------------------------


def retention_cutoff(now: datetime, months: int) -> datetime:
    """``now`` minus ``months`` calendar months (Vietnam dates; the 31st clamps), in UTC."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if months < 0:
        raise ValueError("months must be zero or more")
    local = now.astimezone(VN_TZ)
    year, month_index = divmod(local.year * 12 + local.month - 1 - months, 12)
    day = min(local.day, calendar.monthrange(year, month_index + 1)[1])
    return local.replace(year=year, month=month_index + 1, day=day).astimezone(UTC)


def closed_before(cutoff: datetime) -> ColumnElement[bool]:
    """Dossiers closed (3, 7, 8, 10) at a moment strictly before ``cutoff``."""
    emitted = Dossier.snapshot_emitted_at
    return or_(
        and_(
            Dossier.status == Status.RETURNED,
            func.coalesce(Dossier.returned_at, emitted) < cutoff,
        ),
        and_(
            Dossier.status == Status.REFUSED,
            func.coalesce(Dossier.refused_at, emitted) < cutoff,
        ),
        and_(Dossier.status.in_([Status.WITHDRAWN, Status.STOPPED]), emitted < cutoff),
    )


# ---- JSON edits, per dialect ----------------------------------------------------------------


def _is_postgresql(connection: AsyncConnection) -> bool:
    return connection.dialect.name == "postgresql"


def has_personal_data(
    connection: AsyncConnection, column: SQLColumnExpression[Any]
) -> ColumnElement[bool]:
    """True when the JSON object in ``column`` holds any of :data:`PERSONAL_FIELDS`."""
    if _is_postgresql(connection):
        return column.op("?|", is_comparison=True)(_PG_PERSONAL_KEYS)
    return or_(*(func.json_type(column, path).is_not(None) for path in _SQLITE_PERSONAL_PATHS))


def _without_personal_data(
    connection: AsyncConnection, column: SQLColumnExpression[Any]
) -> ColumnElement[Any]:
    if _is_postgresql(connection):
        return column.op("-")(_PG_PERSONAL_KEYS)
    return func.json_remove(column, *_SQLITE_PERSONAL_PATHS)


def _purged_snapshot(
    connection: AsyncConnection, column: SQLColumnExpression[Any], purged_at: str
) -> ColumnElement[Any]:
    stripped = _without_personal_data(connection, column)
    if _is_postgresql(connection):
        marker = func.jsonb_build_object(
            literal_column(f"'{PURGED_MARKER}'"), cast(literal(purged_at), Text)
        )
        return stripped.op("||")(marker)
    return func.json_set(stripped, f"$.{PURGED_MARKER}", purged_at)


# ---- the purge ------------------------------------------------------------------------------


async def purge_chunk(
    connection: AsyncConnection,
    *,
    cutoff: datetime,
    purged_at: datetime,
    after: str | None = None,
    batch: int = DEFAULT_BATCH,
) -> tuple[int, int, str | None]:
    """Purge up to ``batch`` candidate dossiers with codes after ``after``, in the caller's
    transaction. Returns (dossiers, events rewritten, where the next chunk starts — None when
    there is nothing after this one)."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    in_log = exists().where(
        Event.dossier_code == Dossier.code, has_personal_data(connection, Event.data)
    )
    candidates = (
        select(Dossier.code)
        .where(
            closed_before(cutoff),
            or_(has_personal_data(connection, Dossier.snapshot), in_log),
        )
        .order_by(Dossier.code)
        .limit(batch)
    )
    if after is not None:
        candidates = candidates.where(Dossier.code > after)
    if _is_postgresql(connection):
        # Two purges at once (two reconcilers, or a sweep and ``doisoat purge``) share the work.
        candidates = candidates.with_for_update(of=Dossier, skip_locked=True)
    codes: Sequence[str] = (await connection.execute(candidates)).scalars().all()
    if not codes:
        return 0, 0, None
    stamp = purged_at.astimezone(UTC).isoformat()
    await connection.execute(
        update(Dossier)
        .where(Dossier.code.in_(codes), has_personal_data(connection, Dossier.snapshot))
        .values(snapshot=_purged_snapshot(connection, Dossier.snapshot, stamp))
        .execution_options(synchronize_session=False)
    )
    # Every event of the dossier, not only snapshots: whatever kind carried the fields.
    rewritten = await connection.execute(
        update(Event)
        .where(Event.dossier_code.in_(codes), has_personal_data(connection, Event.data))
        .values(data=_without_personal_data(connection, Event.data))
        .execution_options(synchronize_session=False)
    )
    last = codes[-1] if len(codes) == batch else None
    return len(codes), max(rewritten.rowcount or 0, 0), last


async def purge_personal_data(
    connection: AsyncConnection, *, now: datetime, months: int, batch: int = DEFAULT_BATCH
) -> PurgeResult:
    """Purge every dossier closed more than ``months`` months before ``now``, chunk by chunk,
    all in the caller's transaction (see :func:`purge_with_engine` for one per chunk)."""
    cutoff = retention_cutoff(now, months)
    result = PurgeResult(cutoff=cutoff)
    after: str | None = None
    while True:
        dossiers, events, after = await purge_chunk(
            connection, cutoff=cutoff, purged_at=now, after=after, batch=batch
        )
        result.add(dossiers, events)
        if after is None:
            return result


async def purge_with_engine(
    engine: AsyncEngine,
    *,
    now: datetime,
    months: int,
    batch: int = DEFAULT_BATCH,
    on_chunk: Callable[[PurgeResult], None] | None = None,
) -> PurgeResult:
    """Like :func:`purge_personal_data`, but one short transaction per chunk (for big backlogs:
    ingest is never held up for long, and an interruption keeps the chunks already done)."""
    cutoff = retention_cutoff(now, months)
    result = PurgeResult(cutoff=cutoff)
    after: str | None = None
    started = time.perf_counter()
    while True:
        async with unit_of_work(engine, "purge_personal_data") as connection:
            dossiers, events, after = await purge_chunk(
                connection, cutoff=cutoff, purged_at=now, after=after, batch=batch
            )
        result.add(dossiers, events)
        if after is None:
            break
        if on_chunk is not None:
            on_chunk(result)
    # Counts only: the payloads never reach a log line.
    log.info(
        "personal data purged",
        extra={
            "dossiers": result.dossiers,
            "events": result.events,
            "retention_months": months,
            "seconds": round(time.perf_counter() - started, 3),
        },
    )
    return result


class PersonalDataRetention:
    """The purge as part of the reconciler's sweep: at most once every ``every``.

    The first call purges; later calls do nothing until ``every`` has passed since the last
    completed run (a failed run is retried at the next sweep).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        *,
        months: int,
        batch: int = DEFAULT_BATCH,
        every: timedelta = DEFAULT_SWEEP_EVERY,
    ) -> None:
        if months < 0:
            raise ValueError("months must be zero or more")
        self._engine = engine
        self._clock = clock
        self.months = months
        self._batch = batch
        self._every = every.total_seconds()
        self._last_run: float | None = None

    async def run_due(self) -> PurgeResult | None:
        """Purge if due; returns what was purged, or None when it was not yet time."""
        if self._last_run is not None and time.monotonic() - self._last_run < self._every:
            return None
        result = await purge_with_engine(
            self._engine, now=self._clock(), months=self.months, batch=self._batch
        )
        self._last_run = time.monotonic()
        return result
