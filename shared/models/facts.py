"""What the procedure system sent: the event log, each dossier's state, its steps, the
messages that could not be used, and how far each Kafka partition has been read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, BigIntId, DossierCode, EventId, JsonColumn, UTCDateTime


class Dossier(Base):
    """Current state of one dossier: the newest snapshot plus a summary of its steps."""

    __tablename__ = "dossiers"

    code: Mapped[str] = mapped_column(DossierCode, primary_key=True)
    status: Mapped[int | None] = mapped_column(SmallInteger)
    unit_code: Mapped[str | None] = mapped_column(String(64), index=True)
    procedure_code: Mapped[str | None] = mapped_column(String(64))
    procedure_name: Mapped[str | None] = mapped_column(Text)
    field_name: Mapped[str | None] = mapped_column(Text, index=True)  # TenLinhVuc (đất đai…)
    channel: Mapped[int | None] = mapped_column(SmallInteger)
    digitised: Mapped[bool | None]
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # NgayYeuCau of the reschedule that set due_at (None: the promised NgayHenTra).
    due_source_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(JsonColumn)
    snapshot_emitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    snapshot_event_id: Mapped[str | None] = mapped_column(EventId)
    latest_step_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    latest_step_emitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    latest_step_event_id: Mapped[str | None] = mapped_column(EventId)
    responsible: Mapped[str | None] = mapped_column(String(128))
    # What earlier snapshots said of the dates, as a few extremes (DATES_REWRITTEN; see
    # :mod:`shared.date_marks`): each a minimum or maximum over every snapshot received, so it
    # costs O(1) per snapshot and does not depend on the arrival order. On the dossier's row,
    # not a table of their own: the reconciler reads them with every dossier it judges.
    base_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    base_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    source_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    source_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    source_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_max: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    returned_max: Mapped[datetime | None] = mapped_column(UTCDateTime)
    returned_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Event(Base):
    """The raw event log: every distinct ``event_id`` ever accepted, exactly once."""

    __tablename__ = "events"

    event_id: Mapped[str] = mapped_column(EventId, primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(64))
    emitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    dossier_code: Mapped[str] = mapped_column(DossierCode, index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProgressStep(Base):
    """One processing step (``CapNhatTienDoHoSoMC``); all are kept, ordered by time."""

    __tablename__ = "progress_steps"
    __table_args__ = (Index(None, "dossier_code", "step_at", "emitted_at", "event_id"),)

    event_id: Mapped[str] = mapped_column(
        EventId, ForeignKey("events.event_id", ondelete="CASCADE"), primary_key=True
    )
    dossier_code: Mapped[str] = mapped_column(DossierCode)
    step_at: Mapped[datetime] = mapped_column(UTCDateTime)
    emitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    officer: Mapped[str] = mapped_column(String(128))
    status: Mapped[int] = mapped_column(SmallInteger)
    title: Mapped[str | None] = mapped_column(String(256))
    department: Mapped[str | None] = mapped_column(String(256))
    content: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DeadLetter(Base):
    """A message we could not use, kept with its raw bytes so nothing is lost silently."""

    __tablename__ = "dead_letters"
    __table_args__ = (UniqueConstraint("topic", "partition", "offset"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(255))
    partition: Mapped[int]
    offset: Mapped[int] = mapped_column(BigIntId)
    key: Mapped[bytes | None] = mapped_column(LargeBinary)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(String(32), index=True)
    detail: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DossierStatusSeen(Base):
    """When a dossier was first shown in a closing status (7, 8, 9), whatever the arrival order.

    The KPIs end a withdrawn or stopped dossier (and a finished one without its stamp) at the
    first snapshot that showed it so: a vendor re-syncing it later must not make it late.
    """

    __tablename__ = "dossier_status_seen"

    dossier_code: Mapped[str] = mapped_column(DossierCode, primary_key=True)
    status: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    first_emitted_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IngestPartition(Base):
    """How far each Kafka partition has been consumed, as its consumer last reported it.

    The ingest watermark is computed from these rows: a partition read up to its high-water
    mark counts as "now", a lagging one as the ``emitted_at`` of the newest message consumed.
    """

    __tablename__ = "ingest_partitions"

    topic: Mapped[str] = mapped_column(String(255), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    consumer: Mapped[str] = mapped_column(String(255))
    position: Mapped[int | None] = mapped_column(BigInteger)
    high_water: Mapped[int | None] = mapped_column(BigInteger)
    newest_emitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
