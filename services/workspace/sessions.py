"""Sign-in links and sessions, kept server-side (contract §6).

A link is single-use and valid 15 minutes; opening it only shows a button (mail scanners open
links), the POST uses it. Tokens are 256-bit random strings; only their SHA-256 is stored. A
session ends when its officer signs out, is deactivated, or an operator ends their sessions.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.directory import OfficerRecord
from shared.models import Officer, OfficerSession, SignInLink

LINK_LIFETIME = timedelta(minutes=15)
TOKEN_BYTES = 32

LinkState = Literal["valid", "used", "expired", "unknown", "inactive"]


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The officer behind a session, as the pages need them."""

    officer: OfficerRecord
    csrf_token: str
    session_hash: str


async def find_officer(connection: AsyncConnection, who: str) -> OfficerRecord | None:
    """The active officer with this account or email (case-insensitive email)."""
    who = who.strip()
    if not who:
        return None
    row = (
        await connection.execute(
            select(Officer.__table__).where(
                Officer.active.is_(True),
                or_(Officer.account == who, func.lower(Officer.email) == who.lower()),
            )
        )
    ).first()
    return None if row is None else OfficerRecord.of(row)


async def links_requested_since(connection: AsyncConnection, account: str, since: datetime) -> int:
    counted = await connection.execute(
        select(func.count())
        .select_from(SignInLink)
        .where(SignInLink.account == account, SignInLink.created_at >= since)
    )
    return int(counted.scalar_one())


async def create_link(
    connection: AsyncConnection, account: str, *, now: datetime, requested_from: str | None
) -> str:
    """A new single-use link token for ``account`` (stored hashed)."""
    token = new_token()
    await connection.execute(
        insert(SignInLink).values(
            token_hash=digest(token),
            account=account,
            created_at=now,
            expires_at=now + LINK_LIFETIME,
            used_at=None,
            requested_from=requested_from,
        )
    )
    return token


async def link_state(
    connection: AsyncConnection, token: str, *, now: datetime
) -> tuple[LinkState, OfficerRecord | None]:
    """What opening the link would do (changes nothing)."""
    row = (
        await connection.execute(
            select(SignInLink.used_at, SignInLink.expires_at, Officer.__table__)
            .join(Officer, Officer.account == SignInLink.account)
            .where(SignInLink.token_hash == digest(token))
        )
    ).first()
    if row is None:
        return "unknown", None
    officer = OfficerRecord.of_columns(row)
    if row.used_at is not None:
        return "used", officer
    if row.expires_at <= now:
        return "expired", officer
    if not officer.active:
        return "inactive", officer
    return "valid", officer


async def use_link(
    connection: AsyncConnection,
    token: str,
    *,
    now: datetime,
    lifetime: timedelta,
    client_address: str | None,
) -> tuple[LinkState, OfficerRecord | None, str | None]:
    """Use the link once: (state, officer, new session token when it was valid)."""
    state, officer = await link_state(connection, token, now=now)
    if state != "valid" or officer is None:
        return state, officer, None
    claimed = await connection.execute(
        update(SignInLink)
        .where(SignInLink.token_hash == digest(token), SignInLink.used_at.is_(None))
        .values(used_at=now)
    )
    if claimed.rowcount != 1:  # used by a concurrent request
        return "used", officer, None
    session = new_token()
    await connection.execute(
        insert(OfficerSession).values(
            token_hash=digest(session),
            account=officer.account,
            csrf_token=new_token(),
            created_at=now,
            expires_at=now + lifetime,
            ended_at=None,
            client_address=client_address,
        )
    )
    return "valid", officer, session


async def session_of(connection: AsyncConnection, token: str, *, now: datetime) -> SignedIn | None:
    """The signed-in officer of a session token: None when ended, expired or deactivated."""
    row = (
        await connection.execute(
            select(OfficerSession.csrf_token, OfficerSession.token_hash, Officer.__table__)
            .join(Officer, Officer.account == OfficerSession.account)
            .where(
                OfficerSession.token_hash == digest(token),
                OfficerSession.ended_at.is_(None),
                OfficerSession.expires_at > now,
                Officer.active.is_(True),
            )
        )
    ).first()
    if row is None:
        return None
    return SignedIn(OfficerRecord.of_columns(row), row.csrf_token, row.token_hash)


async def end_session(connection: AsyncConnection, session_hash: str, *, now: datetime) -> None:
    await connection.execute(
        update(OfficerSession)
        .where(OfficerSession.token_hash == session_hash, OfficerSession.ended_at.is_(None))
        .values(ended_at=now)
    )


async def end_sessions_of(connection: AsyncConnection, account: str, *, now: datetime) -> int:
    """End every open session of ``account`` (an operator's revocation); how many."""
    ended = await connection.execute(
        update(OfficerSession)
        .where(OfficerSession.account == account, OfficerSession.ended_at.is_(None))
        .values(ended_at=now)
    )
    return int(ended.rowcount)
