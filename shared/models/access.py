"""Who may call or sign in, and what they did: API keys, sign-in links, sessions, the audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Index,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, BigIntId, JsonColumn, UTCDateTime


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


class SignInLink(Base):
    """A single-use link an officer signs in with (contract §6): valid 15 minutes, used once.

    Only the token's SHA-256 is kept: a database read gives nobody a working link.
    """

    __tablename__ = "sign_in_links"
    __table_args__ = (Index("ix_sign_in_links_account_created_at", "account", "created_at"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    requested_from: Mapped[str | None] = mapped_column(String(64))


class OfficerSession(Base):
    """A signed-in officer, kept server-side so that signing out, deactivating the officer or
    revoking ends it at once. The cookie holds the token; only its SHA-256 is stored."""

    __tablename__ = "officer_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(String(128), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    client_address: Mapped[str | None] = mapped_column(String(64))
