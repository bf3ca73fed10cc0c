"""Tables. Columns that the rules and sweeps query are extracted; the full payloads stay as JSON.

Every column is a function of the set of facts received (plus the injected clock for
``ingested_at``), never of their arrival order: that is what makes replays and duplicate
deliveries harmless.
"""

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
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, BigIntId, JsonColumn, UTCDateTime


class Dossier(Base):
    """Current state of one dossier: the newest snapshot plus a summary of its steps."""

    __tablename__ = "dossiers"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[int | None] = mapped_column(SmallInteger)
    unit_code: Mapped[str | None] = mapped_column(String(64), index=True)
    procedure_code: Mapped[str | None] = mapped_column(String(64))
    procedure_name: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[int | None] = mapped_column(SmallInteger)
    digitised: Mapped[bool | None]
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(JsonColumn)
    snapshot_emitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    snapshot_event_id: Mapped[str | None] = mapped_column(String(128))
    latest_step_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    latest_step_emitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    latest_step_event_id: Mapped[str | None] = mapped_column(String(128))
    responsible: Mapped[str | None] = mapped_column(String(128))


class Event(Base):
    """The raw event log: every distinct ``event_id`` ever accepted, exactly once."""

    __tablename__ = "events"

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(64))
    emitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    dossier_code: Mapped[str] = mapped_column(String(64), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProgressStep(Base):
    """One processing step (``CapNhatTienDoHoSoMC``); all are kept, ordered by time."""

    __tablename__ = "progress_steps"
    __table_args__ = (Index(None, "dossier_code", "step_at", "emitted_at", "event_id"),)

    event_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("events.event_id", ondelete="CASCADE"), primary_key=True
    )
    dossier_code: Mapped[str] = mapped_column(String(64))
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


class Unit(Base):
    """An agency of the directory; ``replaced_by`` points to the unit that took it over."""

    __tablename__ = "units"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    parent_code: Mapped[str | None] = mapped_column(String(64), index=True)
    replaced_by: Mapped[str | None] = mapped_column(String(64), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Officer(Base):
    """Who is told: handlers, desk officers and leaders of a unit (contract §3)."""

    __tablename__ = "officers"

    account: Mapped[str] = mapped_column(String(128), primary_key=True)
    full_name: Mapped[str] = mapped_column(String(256))
    unit_code: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))
    email: Mapped[str | None] = mapped_column(String(320))
    zalo_user_id: Mapped[str | None] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FieldReport(Base):
    """What the one-stop desk recorded: the ground truth the system is checked against."""

    __tablename__ = "field_reports"

    report_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    dossier_code: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    officer: Mapped[str] = mapped_column(String(128))
    unit_code: Mapped[str] = mapped_column(String(64), index=True)
    note: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(8))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReconcileSchedule(Base):
    """When each dossier must next be judged: now after new facts, later when time alone matters.

    Ingest and field reports set ``check_at`` to their commit time in the same transaction; the
    reconciler claims due rows with ``FOR UPDATE SKIP LOCKED`` and sets the next moment at which
    a rule may change its answer (grace expiry, due-soon mark, due date, stall mark), or deletes
    the row when none will. That makes the periodic sweep one indexed query.
    """

    __tablename__ = "reconcile_schedule"
    __table_args__ = (
        Index(
            "ix_reconcile_schedule_due",
            "check_at",
            postgresql_where=text("NOT waits_for_watermark"),
            sqlite_where=text("NOT waits_for_watermark"),
        ),
        Index(
            "ix_reconcile_schedule_waiting",
            "check_at",
            postgresql_where=text("waits_for_watermark"),
            sqlite_where=text("waits_for_watermark"),
        ),
    )

    dossier_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    check_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A desk report waits for the ingest watermark to pass ``check_at`` (contract §4, "What the
    # system has delivered"): such a row is claimed by the watermark, not by the clock.
    waits_for_watermark: Mapped[bool] = mapped_column(default=False, server_default=false())


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


class ReconcilerState(Base):
    """Small named values the reconcilers share, e.g. the fingerprint of the judging settings."""

    __tablename__ = "reconciler_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DossierStatusSeen(Base):
    """When a dossier was first shown in a closing status (7, 8, 9), whatever the arrival order.

    The KPIs end a withdrawn or stopped dossier (and a finished one without its stamp) at the
    first snapshot that showed it so: a vendor re-syncing it later must not make it late.
    """

    __tablename__ = "dossier_status_seen"

    dossier_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    first_emitted_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Discrepancy(Base):
    """One finding about one dossier, from opened to resolved (contract §4)."""

    __tablename__ = "discrepancies"
    __table_args__ = (
        Index(
            "uq_discrepancies_unresolved",
            "dossier_code",
            "kind",
            unique=True,
            postgresql_where=text("status <> 'resolved'"),
            sqlite_where=text("status <> 'resolved'"),
        ),
        Index(None, "status", "kind"),
        Index(None, "unit_code", "status"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    dossier_code: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    unit_code: Mapped[str | None] = mapped_column(String(64))
    responsible: Mapped[str | None] = mapped_column(String(128))
    reporter: Mapped[str | None] = mapped_column(String(128))
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DiscrepancyHistory(Base):
    """Every change of a discrepancy: opened, severity changed, acknowledged, resolved."""

    __tablename__ = "discrepancy_history"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    discrepancy_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("discrepancies.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(128))
    severity: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)


class Notification(Base):
    """The alerts outbox: one message intent per (recipient, channel), written with its cause.

    Rows are written in the same transaction as the discrepancy change that causes them; the
    dispatcher sends due rows (grouping a recipient's rows of one channel into one message) and
    marks them ``sent`` or, after the last attempt, ``dead``.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index(None, "status", "not_before"),
        Index(None, "recipient", "channel", "status"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    discrepancy_id: Mapped[int | None] = mapped_column(BigIntId, index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(320))
    unit_code: Mapped[str | None] = mapped_column(String(64))
    content: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    status: Mapped[str] = mapped_column(String(16))
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    group_id: Mapped[int | None] = mapped_column(BigIntId)
    provider_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AlertTrack(Base):
    """When an open discrepancy's leaders are told (escalation) and its handler reminded."""

    __tablename__ = "alert_tracks"

    discrepancy_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("discrepancies.id", ondelete="CASCADE"), primary_key=True
    )
    escalate_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    remind_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminders: Mapped[int] = mapped_column(default=0)


class Digest(Base):
    """One weekly digest per unit and week, so that two dispatchers never send it twice."""

    __tablename__ = "digests"
    __table_args__ = (UniqueConstraint("unit_code", "week"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    unit_code: Mapped[str] = mapped_column(String(64))
    week: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ZaloToken(Base):
    """The Zalo OA tokens: a refresh token is single use, so the new one is stored at once."""

    __tablename__ = "zalo_tokens"

    app_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StoredApiKey(Base):
    """An API key made with ``doisoat keys create``: only its SHA-256 hash is kept."""

    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("key_hash"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    role: Mapped[str] = mapped_column(String(16))
    units: Mapped[list[str]] = mapped_column(JsonColumn)
    account: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """One write or acknowledgement through the API: who, what, on which target, with what answer.

    Never the request body: bodies carry applicants' personal data.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index(None, "account", "at"),
        Index(None, "action", "at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    account: Mapped[str | None] = mapped_column(String(128))
    role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(255))
    target: Mapped[str | None] = mapped_column(String(255))
    status_code: Mapped[int] = mapped_column(SmallInteger)
    client_address: Mapped[str | None] = mapped_column(String(64))
