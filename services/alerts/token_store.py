"""The Zalo token pair kept in the ``zalo_tokens`` table (one row per Zalo app).

Zalo's refresh token is single use: the moment a refresh succeeds the old one is dead, and the
new one exists only in our memory. :meth:`DatabaseTokenStore.save` therefore commits in its own
unit of work, never inside the caller's transaction — a dispatcher batch rolled back (or a
process killed) after a refresh must not take the new refresh token down with it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.alerts.channels.zalo_tokens import TokenState
from shared.clock import Clock, system_clock
from shared.db import insert_for, unit_of_work
from shared.models import ZaloToken


class DatabaseTokenStore:
    """:class:`~services.alerts.channels.zalo_tokens.TokenStore` on the ``zalo_tokens`` table.

    Every process sending through the same Zalo app shares the row, so a pair refreshed by one
    is seen by the others (the token manager re-reads the store before refreshing).
    """

    def __init__(self, engine: AsyncEngine, app_id: str, *, clock: Clock = system_clock) -> None:
        if not app_id:
            raise ValueError("app_id is required")
        self._engine = engine
        self._app_id = app_id
        self._clock = clock

    async def load(self) -> TokenState | None:
        """The stored pair, or None before the first refresh (the configured token is used)."""
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(
                        ZaloToken.access_token, ZaloToken.refresh_token, ZaloToken.expires_at
                    ).where(ZaloToken.app_id == self._app_id)
                )
            ).first()
        if row is None:
            return None
        return TokenState(
            access_token=row.access_token,
            refresh_token=row.refresh_token,
            expires_at=row.expires_at,
        )

    async def save(self, state: TokenState) -> None:
        """Insert or replace the pair and commit at once (its own transaction)."""
        values = {
            "app_id": self._app_id,
            "access_token": state.access_token,
            "refresh_token": state.refresh_token,
            "expires_at": state.expires_at,
            "updated_at": self._clock(),
        }
        statement = insert_for(self._engine, ZaloToken).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=[ZaloToken.app_id],
            set_={key: value for key, value in values.items() if key != "app_id"},
        )
        async with unit_of_work(self._engine, "zalo_token_save") as connection:
            await connection.execute(statement)
