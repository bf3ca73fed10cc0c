"""API keys and roles (contract §5): who is calling, and may they touch this unit's data."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from shared.config import ApiKey, Role
from shared.directory import Directory

NO_KEYS_MESSAGE = (
    "Chưa cấu hình khóa API: đặt biến môi trường DOISOAT_API_KEYS. / "
    "No API keys are configured: set DOISOAT_API_KEYS, e.g. "
    'DOISOAT_API_KEYS=\'[{"key": "<at least 16 random characters>", "role": "admin", '
    '"account": "quantri"}]\' (roles: source, desk, officer, admin; every role but admin '
    'also needs "units": ["<agency code>", ...]).'
)


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


class KeyRing:
    """The configured keys; lookup compares every key in constant time."""

    def __init__(self, keys: Sequence[ApiKey]) -> None:
        self._keys = [(key.key.encode(), key) for key in keys]

    @property
    def configured(self) -> bool:
        return bool(self._keys)

    def authenticate(self, presented: str) -> Principal | None:
        candidate = presented.encode()
        found: ApiKey | None = None
        for secret, key in self._keys:
            if hmac.compare_digest(secret, candidate):
                found = key
        if found is None:
            return None
        return Principal(account=found.account, role=found.role, units=frozenset(found.units))
