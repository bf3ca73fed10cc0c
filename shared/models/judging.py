"""What the reconciler keeps: the directory, the desk's reports, the schedule, the
discrepancies and their history, and its shared state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, BigIntId, DossierCode, JsonColumn, UTCDateTime


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
    dossier_code: Mapped[str] = mapped_column(DossierCode, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    officer: Mapped[str] = mapped_column(String(128))
    unit_code: Mapped[str] = mapped_column(String(64), index=True)
    note: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(8))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


# The predicates of the schedule's two partial indexes. Queries must use them word for word:
# a planner uses a partial index only when it can prove the index's predicate from the query's.
SCHEDULE_BY_THE_CLOCK = "NOT waits_for_watermark"
SCHEDULE_BY_THE_WATERMARK = "waits_for_watermark"


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
            postgresql_where=text(SCHEDULE_BY_THE_CLOCK),
            sqlite_where=text(SCHEDULE_BY_THE_CLOCK),
        ),
        Index(
            "ix_reconcile_schedule_waiting",
            "check_at",
            postgresql_where=text(SCHEDULE_BY_THE_WATERMARK),
            sqlite_where=text(SCHEDULE_BY_THE_WATERMARK),
        ),
    )

    dossier_code: Mapped[str] = mapped_column(DossierCode, primary_key=True)
    check_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A desk report waits for the ingest watermark to pass ``check_at`` (contract §4, "What the
    # system has delivered"): such a row is claimed by the watermark, not by the clock.
    waits_for_watermark: Mapped[bool] = mapped_column(default=False, server_default=false())


class ReconcilerState(Base):
    """Small named values the reconcilers share, e.g. the fingerprint of the judging settings."""

    __tablename__ = "reconciler_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


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
        # A handler's own unresolved work (the workspace's badges and inbox).
        Index(
            "ix_discrepancies_responsible_unresolved",
            "responsible",
            postgresql_where=text("status <> 'resolved'"),
            sqlite_where=text("status <> 'resolved'"),
        ),
        # A scope's unresolved work without reading the table: badges, the board's counts per
        # unit and kind, the inbox's field filter and its choices.
        Index(
            "ix_discrepancies_unresolved_unit_kind",
            "unit_code",
            "kind",
            "status",
            postgresql_where=text("status <> 'resolved'"),
            sqlite_where=text("status <> 'resolved'"),
        ),
        Index(
            "ix_discrepancies_unresolved_unit_field",
            "unit_code",
            "field_name",
            postgresql_where=text("status <> 'resolved'"),
            sqlite_where=text("status <> 'resolved'"),
        ),
        # The board's lists: the oldest outstanding of a kind first.
        Index(
            "ix_discrepancies_unresolved_kind_since",
            "kind",
            "since",
            "dossier_code",
            postgresql_include=["unit_code"],
            postgresql_where=text("status <> 'resolved'"),
            sqlite_where=text("status <> 'resolved'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    dossier_code: Mapped[str] = mapped_column(DossierCode, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    unit_code: Mapped[str | None] = mapped_column(String(64))
    field_name: Mapped[str | None] = mapped_column(Text)  # the dossier's TenLinhVuc, kept in step
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
