"""The alerts dispatcher: sends due outbox rows, grouped per recipient, and records the outcome.

One pass (:meth:`Dispatcher.dispatch_once`):

1. **Claim** the due rows (``status='pending' AND not_before <= now``, oldest first, at most
   ``batch_size``) with ``FOR UPDATE SKIP LOCKED``, plus, for each (recipient, channel, purpose)
   among them, that recipient's other pending rows due within ``group_wait`` — they join the
   same message instead of following it seconds later (Alertmanager's group wait).
2. **Group** rows by (recipient, channel, address, purpose), at most ``max_group_rows`` rows a
   message; render each group with the injected renderer and send it: email groups one after
   the other over the channel's one SMTP connection, Zalo groups a few at a time.
3. **Record** every row's outcome: sent; retry with backoff (``not_before`` moved, attempt
   counted); deferred without counting an attempt (provider quota used up, or the channel kept
   failing earlier in this batch); Zalo OA rows the OA cannot reach become ZNS rows to the
   officer's phone; dead after ``max_attempts`` or on a permanent failure. These rules live in
   :mod:`services.alerts.decisions`.

Delivery guarantee — at least once, at most one duplicate per crash. On PostgreSQL the claim
transaction stays open during the sends and records the outcomes before it commits: the row
locks keep any other dispatcher off these rows (never two sends of a row at once), and a crash
between a send and the commit rolls the transaction back, so the rows stay pending and are sent
again once. On SQLite (one dispatcher, the embedded default) a transaction held during network
I/O would block every other writer — including the Zalo token store, which must commit a
rotated refresh token at once — so claimed rows are instead leased (``not_before`` pushed
``lease`` ahead) in a short transaction, sent, and recorded in a second one; after a crash they
come back when the lease ends.

Quiet hours are applied by the planner through ``not_before``, not here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.alerts import officers, outbox
from services.alerts.channels.base import Channel, Message, Recipient, SendOutcome, SendResult
from services.alerts.config import DispatchSettings
from services.alerts.decisions import (
    NOT_CONFIGURED,
    Decider,
    Decision,
    Deferred,
    Group,
    dead,
    observe,
)
from services.alerts.outbox import OutboxRow
from shared import metrics
from shared.clock import Clock
from shared.db import unit_of_work

__all__ = ["Dispatcher", "Renderer"]

log = logging.getLogger("doisoat.alerts.dispatcher")


class Renderer(Protocol):
    """Builds the message of one group: ``purpose``, the rows' contents, to whom, id, channel."""

    def __call__(
        self,
        purpose: str,
        contents: Sequence[Mapping[str, Any]],
        recipient: Recipient,
        notification_id: str,
        channel: str,
    ) -> Message: ...


@dataclass(slots=True)
class _Lane:
    """One channel's sending lane within a batch."""

    channel: Channel
    semaphore: asyncio.Semaphore
    failures: int = 0  # consecutive RETRY outcomes in this batch
    last_failure: str = ""


@dataclass(slots=True)
class _Batch:
    """The claimed rows of one pass, grouped into messages; some decided without a send."""

    rows: list[OutboxRow] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    phones: dict[str, str | None] = field(default_factory=dict)
    decided: list[Decision] = field(default_factory=list)  # decided without sending


class Dispatcher:
    """Drains the notifications outbox through the configured channels."""

    name = "alerts"

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        clock: Clock,
        channels: Mapping[str, Channel],
        renderer: Renderer,
        settings: DispatchSettings,
        rng: random.Random | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._channels = dict(channels)
        self._renderer = renderer
        self._settings = settings
        self._decider = Decider(
            max_attempts=settings.max_attempts,
            backoff_base=settings.backoff_base,
            backoff_cap=settings.backoff_cap,
            channels=self._channels.keys(),
            rng=rng or random.Random(),
        )
        self._hold_locks = engine.dialect.name == "postgresql"
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()

    def stop(self) -> None:
        """Finish the pass under way (its sends are recorded), then leave :meth:`run`."""
        self._stopping.set()
        self._wake.set()

    def wake(self) -> None:
        """Ask for a pass now (new rows were committed in this process)."""
        self._wake.set()

    async def run(self) -> None:
        """Pass after pass until :meth:`stop`; a failed pass is logged, its rows stay pending."""
        poll = self._settings.poll_interval.total_seconds()
        while not self._stopping.is_set():
            try:
                await self.drain()
                await self.refresh_gauges()
            except Exception:
                log.exception("dispatch pass failed; the rows stay pending and are retried")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=poll)

    async def drain(self) -> int:
        """Pass after pass while full batches come back; returns the rows handled."""
        handled = 0
        while not self._stopping.is_set():
            count = await self.dispatch_once()
            handled += count
            if count < self._settings.batch_size:
                break
        return handled

    async def dispatch_once(self) -> int:
        """Claim, send and record one batch; returns the number of rows handled."""
        started = time.perf_counter()
        if self._hold_locks:
            async with unit_of_work(self._engine, "alerts_dispatch") as connection:
                batch = await self._claim(connection)
                if not batch.rows:
                    return 0
                decided = await self._send(batch)
                await outbox.record(connection, [d.update for d in decided])
        else:
            async with unit_of_work(self._engine, "alerts_claim") as connection:
                batch = await self._claim(connection)
                if not batch.rows:
                    return 0
                until = self._clock() + self._settings.lease
                await outbox.lease(connection, [row.id for row in batch.rows], until=until)
            decided = await self._send(batch)
            async with unit_of_work(self._engine, "alerts_record") as connection:
                await outbox.record(connection, [d.update for d in decided])
        observe(batch.rows, decided)
        metrics.DISPATCH_BATCH_SECONDS.observe(time.perf_counter() - started)
        return len(batch.rows)

    async def refresh_gauges(self) -> None:
        """Pending rows and the age of the oldest due one, read from the database."""
        async with self._engine.connect() as connection:
            pending, oldest_age = await outbox.pending_stats(connection, now=self._clock())
        metrics.OUTBOX_PENDING.set(pending)
        metrics.OUTBOX_OLDEST_PENDING_AGE.set(oldest_age)

    # --- claim -----------------------------------------------------------------------

    async def _claim(self, connection: AsyncConnection) -> _Batch:
        """Lock the due rows and their companions, and group them into messages."""
        settings = self._settings
        now = self._clock()
        due = await outbox.claim_due(connection, now=now, limit=settings.batch_size)
        if not due:
            return _Batch()
        keys = {(r.recipient, r.channel, r.purpose) for r in due if r.channel in self._channels}
        companions = await outbox.claim_companions(
            connection,
            keys=keys,
            until=now + settings.group_wait,
            exclude={row.id for row in due},
            limit=settings.max_batch_rows - len(due),
        )
        rows = due + companions
        directory = await officers.recipients_of(connection, {row.recipient for row in rows})
        batch = _Batch(rows=rows)
        batch.phones = {account: officer.phone for account, officer in directory.items()}
        grouped: dict[tuple[str, str, str, str], list[OutboxRow]] = defaultdict(list)
        for row in rows:
            if row.channel not in self._channels:
                batch.decided.append(dead(row, NOT_CONFIGURED))
                continue
            grouped[(row.recipient, row.channel, row.address, row.purpose)].append(row)
        size = settings.max_group_rows
        for (account, channel, address, purpose), members in grouped.items():
            members.sort(key=lambda row: row.id)
            recipient = _addressed(directory.get(account), account, channel, address)
            for start in range(0, len(members), size):
                batch.groups.append(
                    Group(channel, purpose, recipient, members[start : start + size])
                )
        return batch

    # --- send --------------------------------------------------------------------------

    async def _send(self, batch: _Batch) -> list[Decision]:
        """Send every group, then decide each row's new state (the caller writes it)."""
        zalo_slots = asyncio.Semaphore(self._settings.zalo_concurrency)
        lanes = {
            name: _Lane(channel, asyncio.Semaphore(1) if name == "email" else zalo_slots)
            for name, channel in self._channels.items()
        }
        results = await asyncio.gather(
            *(self._send_group(group, lanes[group.channel]) for group in batch.groups)
        )
        now = self._clock()
        decided = list(batch.decided)
        for group, result in zip(batch.groups, results, strict=True):
            decided.extend(self._decider.decide(group, result, now, batch.phones))
        return decided

    async def _send_group(self, group: Group, lane: _Lane) -> SendResult | Deferred:
        """Render and send one group, unless its channel is out of quota or keeps failing."""
        async with lane.semaphore:
            resets_at = _quota_resets_at(lane.channel)
            if resets_at is not None:
                return Deferred("quota", "quota used up, waiting for the reset", resets_at)
            if lane.failures >= self._settings.channel_failure_threshold:
                detail = f"not attempted, channel failing: {lane.last_failure}"
                return Deferred("channel_failing", detail[:300], None)
            try:
                message = self._renderer(
                    group.purpose,
                    [row.content for row in group.rows],
                    group.recipient,
                    group.notification_id,
                    group.channel,
                )
            except Exception as exc:
                log.exception("rendering failed", extra={"group_id": group.group_id})
                return SendResult(
                    SendOutcome.RETRY, f"render failed: {type(exc).__name__}: {exc}"[:300]
                )
            result = await lane.channel.send(message)
            if result.outcome is SendOutcome.RETRY:
                resets_at = _quota_resets_at(lane.channel)
                if resets_at is not None:  # the provider's quota, not this message, failed
                    return Deferred("quota", result.detail, resets_at)
                lane.failures += 1
                lane.last_failure = result.detail
            else:
                lane.failures = 0
            return result


def _addressed(officer: Recipient | None, account: str, channel: str, address: str) -> Recipient:
    """The officer as the directory knows them, reached at the row's address for its channel."""
    base = officer or Recipient(account, account, None, None, None)
    if channel == "email":
        return replace(base, email=address)
    if channel == "zalo_oa":
        return replace(base, zalo_user_id=address)
    if channel == "zalo_zns":
        return replace(base, phone=address)
    return base


def _quota_resets_at(channel: Channel) -> datetime | None:
    """When a channel that paused itself (quota or balance used up) may send again."""
    if getattr(channel, "quota_exhausted", False):
        resets_at = getattr(channel, "quota_resets_at", None)
        return resets_at if isinstance(resets_at, datetime) else None
    return None
