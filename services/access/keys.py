"""API keys kept in the database (``doisoat keys``): made once, stored only as hashes, revoked.

A key is ``secrets.token_urlsafe(32)`` (256 random bits). Only its SHA-256 hash is stored, with
its first characters (``prefix``) so that people can tell keys apart; the key itself is shown
once, by whoever creates it. Validation is that of ``DOISOAT_API_KEYS`` entries
(:class:`shared.config.ApiKey`): a role among source, desk, officer, admin, and units unless
admin. Revoking keeps the row (with ``revoked_at``) so that the audit log's accounts stay
explainable.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, StringConstraints
from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.auth import key_digest
from shared.config import ApiKey, Role
from shared.models import StoredApiKey, Unit

PREFIX_LENGTH = 6
KEY_BYTES = 32

UnitCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Account = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class KeyCreate(BaseModel):
    """What an admin asks for; checked again as an ``ApiKey`` (units unless admin)."""

    role: Role
    units: list[UnitCode]
    account: Account


class KeyRead(BaseModel):
    """A stored key as people see it: never the key, never its hash."""

    id: int
    prefix: str
    role: str
    units: list[str]
    account: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: Any) -> KeyRead:
        return cls(
            id=row.id,
            prefix=row.prefix,
            role=row.role,
            units=list(row.units or ()),
            account=row.account,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
        )


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: str  # shown once, stored nowhere
    stored: KeyRead


class KeyNotFound(LookupError):
    """No key has that id or prefix."""


class AmbiguousKey(LookupError):
    """Several active keys share that prefix: name the key by its id."""

    def __init__(self, ident: str, ids: Sequence[int]) -> None:
        super().__init__(ident, tuple(ids))
        self.ident = ident
        self.ids = tuple(ids)


def new_key() -> str:
    """A fresh key that does not start with "-": a command line would take its prefix for an
    option (``doisoat keys revoke -kx…`` failed for one key in 64). Drawing again when it does
    costs under 0.03 of the key's 256 bits."""
    while (key := secrets.token_urlsafe(KEY_BYTES)).startswith("-"):
        pass
    return key


async def create_key(
    connection: AsyncConnection,
    *,
    role: str,
    units: Sequence[str],
    account: str,
    now: datetime,
) -> CreatedKey:
    """Make a key, store its hash; raises ``pydantic.ValidationError`` on a bad request."""
    spec = KeyCreate(role=role, units=list(units), account=account)
    key = ApiKey(
        key=new_key(),
        role=spec.role,
        units=list(dict.fromkeys(spec.units)),
        account=spec.account,
    )
    row = (
        await connection.execute(
            insert(StoredApiKey)
            .values(
                key_hash=key_digest(key.key),
                prefix=key.key[:PREFIX_LENGTH],
                role=key.role,
                units=key.units,
                account=key.account,
                created_at=now,
                revoked_at=None,
            )
            .returning(StoredApiKey)
        )
    ).one()
    return CreatedKey(key=key.key, stored=KeyRead.of(row))


async def unknown_units(connection: AsyncConnection, units: Sequence[str]) -> list[str]:
    """The codes not (yet) in the directory: worth a warning, not a refusal."""
    if not units:
        return []
    known = set((await connection.execute(select(Unit.code).where(Unit.code.in_(units)))).scalars())
    return [code for code in units if code not in known]


async def list_keys(connection: AsyncConnection) -> list[KeyRead]:
    """Every stored key, oldest first, revoked ones included."""
    rows = (await connection.execute(select(StoredApiKey).order_by(StoredApiKey.id))).all()
    return [KeyRead.of(row) for row in rows]


async def revoke_key(
    connection: AsyncConnection, *, ident: str, now: datetime
) -> tuple[KeyRead, bool]:
    """Revoke the key with id or prefix ``ident``; the flag says whether it was active."""
    ident = ident.strip()
    matches = [StoredApiKey.prefix == ident]
    if ident.isdigit() and len(ident) <= 18:
        matches.append(StoredApiKey.id == int(ident))
    rows = (
        await connection.execute(
            select(StoredApiKey).where(or_(*matches)).order_by(StoredApiKey.id)
        )
    ).all()
    if not rows:
        raise KeyNotFound(ident)
    if len(rows) > 1:
        active = [row for row in rows if row.revoked_at is None]
        if len(active) != 1:
            raise AmbiguousKey(ident, [row.id for row in (active or rows)])
        rows = active
    row = rows[0]
    if row.revoked_at is not None:
        return KeyRead.of(row), False
    revoked = (
        await connection.execute(
            update(StoredApiKey)
            .where(StoredApiKey.id == row.id, StoredApiKey.revoked_at.is_(None))
            .values(revoked_at=now)
            .returning(StoredApiKey)
        )
    ).one_or_none()
    if revoked is None:  # revoked meanwhile by someone else
        current = (
            await connection.execute(select(StoredApiKey).where(StoredApiKey.id == row.id))
        ).one()
        return KeyRead.of(current), False
    return KeyRead.of(revoked), True
