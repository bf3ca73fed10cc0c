"""API keys and roles (contract §5): who is calling, and may they touch this unit's data.

Keys come from two places: ``DOISOAT_API_KEYS`` (the environment) and the ``api_keys`` table
(``doisoat keys create``). Neither is ever compared in clear: a presented key is hashed
(SHA-256; keys are 256-bit random strings, so no salt or slow hash is needed) and the hash is
compared with :func:`hmac.compare_digest`. The table's active keys are cached for a few seconds
so that a request is not a database round trip; a revoked key stops working within that time.
A failed read is remembered as long: table keys then answer 503, environment keys still work.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import get_args

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.config import ApiKey, Role
from shared.db import unit_of_work
from shared.directory import Directory
from shared.models import StoredApiKey

log = logging.getLogger("doisoat.auth")

STORED_KEYS_TTL_SECONDS = 5.0
ROLES: tuple[str, ...] = get_args(Role)

NO_KEYS_MESSAGE = (
    "Chưa cấu hình khóa API: tạo khóa bằng `doisoat keys create` hoặc đặt biến môi trường "
    "DOISOAT_API_KEYS. / "
    "No API keys are configured: create one with "
    "`doisoat keys create --role admin --account quantri`, or set DOISOAT_API_KEYS, e.g. "
    'DOISOAT_API_KEYS=\'[{"key": "<at least 16 random characters>", "role": "admin", '
    '"account": "quantri"}]\' (roles: source, desk, officer, admin; every role but admin '
    'also needs "units": ["<agency code>", ...]).'
)
KEYS_UNAVAILABLE_MESSAGE = (
    "Không đọc được khóa API trong cơ sở dữ liệu (đã chạy `doisoat migrate` chưa?). / "
    "The API keys could not be read from the database (has `doisoat migrate` been run?)."
)


def key_digest(key: str) -> str:
    """The SHA-256 hex digest under which a key is stored and looked up."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    account: str
    role: Role
    units: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def may_act_for(self, unit_code: str | None, directory: Directory) -> bool:
        """Admins act for every unit; other keys for their units, descendants and replaced codes."""
        return self.is_admin or directory.covers(self.units, unit_code)


class KeyStoreUnavailable(Exception):
    """The ``api_keys`` table could not be read (database down or not migrated)."""


class KeyRing:
    """The keys of the environment and of the ``api_keys`` table, looked up by hash."""

    def __init__(
        self,
        keys: Sequence[ApiKey],
        *,
        engine: AsyncEngine | None = None,
        ttl_seconds: float = STORED_KEYS_TTL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._configured = [
            (
                key_digest(key.key),
                Principal(account=key.account, role=key.role, units=frozenset(key.units)),
            )
            for key in keys
        ]
        self._engine = engine
        self._ttl = ttl_seconds
        self._monotonic = monotonic
        self._stored: Mapping[str, tuple[str, Principal]] = {}
        self._loaded_at: float | None = None
        self._failed = False
        self._lock = asyncio.Lock()

    async def configured(self) -> bool:
        """Whether any key exists at all (else every call is a 503 saying how to make one)."""
        return bool(self._configured) or bool(await self._stored_keys())

    async def authenticate(self, presented: str) -> Principal | None:
        """The principal of ``presented``, or None; raises :class:`KeyStoreUnavailable`."""
        candidate = key_digest(presented)
        found: Principal | None = None
        for digest, principal in self._configured:  # every entry, no early exit
            if hmac.compare_digest(digest, candidate):
                found = principal
        if found is not None:
            return found
        # Table keys are found by their hash (as an index would), then confirmed in constant
        # time; timing can at most tell an attacker about a hash, never about a key.
        entry = (await self._stored_keys()).get(candidate)
        if entry is not None and hmac.compare_digest(entry[0], candidate):
            return entry[1]
        return None

    async def _stored_keys(self) -> Mapping[str, tuple[str, Principal]]:
        if self._engine is None:
            return {}
        if not self._stale():
            return self._current()
        async with self._lock:
            if not self._stale():
                return self._current()
            # The age counts from the start of the read: a key revoked while it ran is seen
            # by the next read, at most ``ttl`` later.
            started = self._monotonic()
            try:
                loaded = await self._load(self._engine)
            except Exception:
                log.warning("api keys could not be read from the database", exc_info=True)
                self._stored, self._failed = {}, True
            else:
                self._stored, self._failed = loaded, False
            self._loaded_at = started
            return self._current()

    def _stale(self) -> bool:
        return self._loaded_at is None or self._monotonic() - self._loaded_at >= self._ttl

    def _current(self) -> Mapping[str, tuple[str, Principal]]:
        if self._failed:
            raise KeyStoreUnavailable(KEYS_UNAVAILABLE_MESSAGE)
        return self._stored

    @staticmethod
    async def _load(engine: AsyncEngine) -> dict[str, tuple[str, Principal]]:
        query = select(
            StoredApiKey.key_hash, StoredApiKey.account, StoredApiKey.role, StoredApiKey.units
        ).where(StoredApiKey.revoked_at.is_(None))
        async with unit_of_work(engine, "api_keys_load") as connection:
            rows = (await connection.execute(query)).all()
        loaded: dict[str, tuple[str, Principal]] = {}
        for row in rows:
            if row.role not in ROLES:
                log.warning("stored api key with an unknown role ignored", extra={"role": row.role})
                continue
            principal = Principal(
                account=row.account, role=row.role, units=frozenset(row.units or ())
            )
            loaded[row.key_hash] = (row.key_hash, principal)
        return loaded
