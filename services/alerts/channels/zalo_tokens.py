"""The Zalo OA access token: refreshed with a single-use refresh token, kept in a store.

Zalo rotates the refresh token on every refresh and refuses the old one afterwards; losing the
new one locks the service out of Zalo until an operator issues another from the console.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from shared import metrics
from shared.clock import Clock, system_clock

if TYPE_CHECKING:
    from services.alerts.channels.zalo_settings import ZaloSettings


@dataclass(frozen=True, slots=True)
class TokenState:
    """The current token pair; ``expires_at`` is timezone-aware."""

    access_token: str
    refresh_token: str
    expires_at: datetime


class TokenStore(Protocol):
    """Where the rotating token pair survives restarts (the lead adds a database store)."""

    async def load(self) -> TokenState | None: ...

    async def save(self, state: TokenState) -> None: ...


class InMemoryTokenStore:
    """A process-local store, for tests and single-shot tools."""

    def __init__(self, initial: TokenState | None = None) -> None:
        self.state = initial
        self.saves = 0

    async def load(self) -> TokenState | None:
        return self.state

    async def save(self, state: TokenState) -> None:
        self.state = state
        self.saves += 1


class ZaloTokenError(Exception):
    """Zalo would not give us an access token."""


class ZaloUnavailable(Exception):
    """Zalo answered nothing usable (5xx, 429, not JSON): a transient failure."""

    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ZaloTokenManager:
    """Hands out a valid OA access token, refreshing it with the single-use refresh token.

    Zalo rotates the refresh token on every refresh and refuses the old one afterwards, so the
    new pair is saved before anything else happens, and refreshes are serialised: two
    concurrent refreshes would burn the token and lock the service out until an operator
    issues a new one.
    """

    def __init__(
        self,
        settings: ZaloSettings,
        store: TokenStore,
        http: httpx.AsyncClient,
        clock: Clock = system_clock,
    ) -> None:
        self._settings = settings
        self._store = store
        self._http = http
        self._clock = clock
        self._lock = asyncio.Lock()
        self._cached: TokenState | None = None
        self._unsaved: TokenState | None = None  # refreshed, but the store failed to save it
        self._rejected: set[str] = set()  # access tokens Zalo refused since the last refresh
        self.refreshes = 0

    async def access_token(self) -> str:
        """A token Zalo should accept now; refreshes when missing, expiring or refused."""
        cached = self._cached
        if self._unsaved is None and self._usable(cached):
            assert cached is not None
            return cached.access_token
        async with self._lock:
            if self._unsaved is not None:
                await self._store.save(self._unsaved)
                self._unsaved = None
            # Re-read: another process sharing the store may have refreshed meanwhile.
            state = await self._store.load()
            if self._usable(state):
                assert state is not None
                self._cached = state
                return state.access_token
            try:
                return (await self._refresh(state)).access_token
            except ZaloTokenError:
                # Another process sharing the store may have spent the same refresh token a
                # moment ago: its new pair is in the store, and ours was refused for that.
                latest = await self._store.load()
                if latest is not None and latest != state and self._usable(latest):
                    self._cached = latest
                    return latest.access_token
                raise

    async def invalidate(self, token: str) -> None:
        """Zalo refused ``token``: the next :meth:`access_token` call refreshes."""
        self._rejected.add(token)
        if self._cached is not None and self._cached.access_token == token:
            self._cached = None

    def _usable(self, state: TokenState | None) -> bool:
        if state is None or state.access_token in self._rejected:
            return False
        margin = timedelta(seconds=self._settings.refresh_margin_seconds)
        return state.expires_at - margin > self._clock()

    async def _refresh(self, state: TokenState | None) -> TokenState:
        settings = self._settings
        refresh_token = (
            state.refresh_token if state is not None else settings.refresh_token.get_secret_value()
        )
        try:
            response = await self._http.post(
                f"{settings.oauth_base}/v4/oa/access_token",
                data={
                    "refresh_token": refresh_token,
                    "app_id": settings.app_id,
                    "grant_type": "refresh_token",
                },
                headers={"secret_key": settings.secret_key.get_secret_value()},
            )
        except httpx.HTTPError:
            metrics.ZALO_TOKEN_REFRESHES.labels(outcome="error").inc()
            raise
        body = json_or_none(response)
        if response.status_code >= 500 or body is None:
            metrics.ZALO_TOKEN_REFRESHES.labels(outcome="error").inc()
            raise ZaloUnavailable(f"token endpoint answered HTTP {response.status_code}")
        if not body.get("access_token") or not body.get("refresh_token"):
            metrics.ZALO_TOKEN_REFRESHES.labels(outcome="refused").inc()
            raise ZaloTokenError(
                "token refresh refused: "
                f"{body.get('error')} {body.get('error_name', '')} "
                f"{body.get('error_description', '')}".strip()
            )
        try:
            lifetime = float(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        new = TokenState(
            access_token=str(body["access_token"]),
            refresh_token=str(body["refresh_token"]),
            expires_at=self._clock() + timedelta(seconds=lifetime),
        )
        # The old refresh token is dead from this moment: keep the new pair in memory first
        # (cannot fail), then persist it; a failed save is retried on the next call.
        self._cached = new
        self._unsaved = new
        self._rejected.clear()
        self.refreshes += 1
        metrics.ZALO_TOKEN_REFRESHES.labels(outcome="ok").inc()
        await self._store.save(new)
        self._unsaved = None
        return new


def json_or_none(response: httpx.Response) -> dict[str, Any] | None:
    """The answer's JSON object, or None when it is not one (HTML error pages, empty)."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
