"""What the alerts keep: the outbox, escalation tracks, weekly digests, Zalo tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, BigIntId, JsonColumn, UTCDateTime


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
