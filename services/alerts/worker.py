"""Wiring of the alerts service: channels from settings, the dispatcher, and the scheduler loop.

The scheduler plans what time alone triggers (escalations, reminders, the weekly digest); the
dispatcher sends what is due. Both may run in any number of processes: tracks and outbox rows
are claimed with ``SKIP LOCKED``, and a digest is claimed per (unit, week).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from services.alerts.channels.base import Channel, Message, Recipient
from services.alerts.channels.email import EmailChannel
from services.alerts.channels.zalo import ZaloApi, ZaloOAChannel, ZaloZNSChannel
from services.alerts.config import AlertsSettings
from services.alerts.content.rendering import render
from services.alerts.dispatcher import Dispatcher
from services.alerts.links import AckLinks, ack_links_from
from services.alerts.planner import AlertPlanner
from services.alerts.token_store import DatabaseTokenStore
from shared.clock import Clock
from shared.db import unit_of_work

log = logging.getLogger("doisoat.alerts")

TRACKS_PER_TRANSACTION = 500


def build_channels(
    settings: AlertsSettings, engine: AsyncEngine, clock: Clock
) -> dict[str, Channel]:
    """One channel object per configured channel (email off without SMTP, Zalo without app)."""
    channels: dict[str, Channel] = {}
    if settings.email is not None:
        channels["email"] = EmailChannel(settings.email, clock=clock)
    zalo = settings.zalo
    if zalo is not None:
        api = ZaloApi(zalo, DatabaseTokenStore(engine, zalo.app_id, clock=clock), clock=clock)
        channels["zalo_oa"] = ZaloOAChannel(api)
        if zalo.zns_template_id:
            channels["zalo_zns"] = ZaloZNSChannel(api)
    return channels


@dataclass(frozen=True, slots=True)
class Renderer:
    """Adapts :func:`render` to the dispatcher: each recipient gets ack links of their own."""

    links: AckLinks

    def __call__(
        self,
        purpose: str,
        contents: Sequence[Mapping[str, Any]],
        recipient: Recipient,
        notification_id: str,
        channel: str,
    ) -> Message:
        ack = {
            int(item["discrepancy_id"]): self.links.url_for(
                int(item["discrepancy_id"]), recipient.account
            )
            for item in contents
            if item.get("discrepancy_id") is not None
        }
        return render(
            purpose,
            contents,
            recipient=recipient,
            notification_id=notification_id,
            ack_links=ack,
            channel=channel,
        )


@dataclass
class AlertsWorker:
    """The dispatcher plus the scheduler of escalations, reminders and digests, as one worker."""

    settings: AlertsSettings
    engine: AsyncEngine
    clock: Clock
    planner: AlertPlanner
    name: str = "alerts"
    channels: dict[str, Channel] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.channels = build_channels(self.settings, self.engine, self.clock)
        self.dispatcher = Dispatcher(
            engine=self.engine,
            clock=self.clock,
            channels=self.channels,
            renderer=Renderer(ack_links_from(self.settings, self.clock)),
            settings=self.settings.dispatch,
        )
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Stop scheduling and let the dispatcher record the pass under way."""
        self._stopping.set()
        self.dispatcher.stop()

    def wake(self) -> None:
        """New rows were committed in this process: send them without waiting for a poll."""
        self.dispatcher.wake()

    async def run(self) -> None:
        """Dispatch and schedule until stopped, then close the channels' connections."""
        if not self.channels:
            log.warning("no alert channel configured (DOISOAT_SMTP_HOST, DOISOAT_ZALO_APP_ID)")
        try:
            await asyncio.gather(self.dispatcher.run(), self._schedule())
        finally:
            for channel in self.channels.values():
                with contextlib.suppress(Exception):
                    await channel.aclose()

    async def _schedule(self) -> None:
        """Tick every five polls: time-driven alerts need no faster clock than that."""
        while not self._stopping.is_set():
            try:
                if await self.tick():
                    self.dispatcher.wake()
            except Exception:
                log.exception("alert scheduling failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopping.wait(), timeout=self.settings.dispatch_poll_seconds * 5
                )

    async def tick(self) -> int:
        """Plan due escalations, reminders and this week's digests; returns tracks + digests."""
        planned = 0
        while True:
            async with unit_of_work(self.engine, "alert_tracks") as connection:
                handled = await self.planner.due_tracks(
                    connection, now=self.clock(), limit=TRACKS_PER_TRANSACTION
                )
            planned += handled
            if handled < TRACKS_PER_TRANSACTION:
                break
        async with unit_of_work(self.engine, "weekly_digest") as connection:
            planned += await self.planner.plan_digests(
                connection,
                now=self.clock(),
                weekday=self.settings.digest_weekday,
                at=self.settings.digest_time,
            )
        return planned
