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
   officer's phone; dead after ``max_attempts`` or on a permanent failure.

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
import hashlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.alerts import outbox
from services.alerts.channels.base import (
    Channel,
    Message,
    Outcome,
    Recipient,
    SendResult,
    backoff_delay,
)
from services.alerts.outbox import OutboxRow, RowUpdate, recipient_of
from shared import metrics
from shared.clock import Clock
from shared.db import unit_of_work

__all__ = ["DispatchSettings", "Dispatcher", "Renderer", "recipient_of"]

log = logging.getLogger("doisoat.alerts.dispatcher")

NOT_CONFIGURED = "channel not configured"
NO_ZALO = "no Zalo account: email only"
ZALO_UNREACHABLE = "không liên lạc được qua Zalo"
KNOWN_CHANNELS = frozenset({"email", "zalo_oa", "zalo_zns"})


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


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    """Tuning of the dispatcher; the defaults suit one province."""

    group_wait: timedelta = timedelta(seconds=30)
    batch_size: int = 200  # due rows claimed per pass (so at most ~this many messages)
    max_batch_rows: int = 2000  # due rows plus the rows joining their messages (group wait)
    max_group_rows: int = 50  # rows listed in one message at most
    max_attempts: int = 8
    backoff_base: timedelta = timedelta(seconds=5)
    backoff_cap: timedelta = timedelta(hours=1)
    poll_interval: timedelta = timedelta(seconds=1)
    zalo_concurrency: int = 4  # Zalo calls in flight at once (OA and ZNS together)
    channel_failure_threshold: int = 3  # consecutive retries before a channel rests this batch
    lease: timedelta = timedelta(minutes=5)  # SQLite only: how long claimed rows stay hidden

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_group_rows < 1 or self.zalo_concurrency < 1:
            raise ValueError("batch_size, max_group_rows and zalo_concurrency must be >= 1")
        if self.max_batch_rows < self.batch_size:
            raise ValueError("max_batch_rows must be >= batch_size")
        if self.max_attempts < 1 or self.channel_failure_threshold < 1:
            raise ValueError("max_attempts and channel_failure_threshold must be >= 1")
        if not timedelta(0) < self.backoff_base <= self.backoff_cap:
            raise ValueError("need 0 < backoff_base <= backoff_cap")
        if self.group_wait < timedelta(0) or self.lease <= timedelta(0):
            raise ValueError("group_wait must be >= 0 and lease > 0")


@dataclass(slots=True)
class _Group:
    """Rows that go out as one message."""

    channel: str
    purpose: str
    recipient: Recipient
    rows: list[OutboxRow]

    @property
    def group_id(self) -> int:
        return min(row.id for row in self.rows)

    @property
    def notification_id(self) -> str:
        """The smallest row id, suffixed by a digest of all ids when there are several.

        The same rows always get the same id (a retry reuses the email ``Message-ID`` and the
        ZNS ``tracking_id``), and a retry that picked up more rows gets a new one: mail systems
        drop a second message carrying a ``Message-ID`` they have already seen.
        """
        ids = sorted(row.id for row in self.rows)
        if len(ids) == 1:
            return str(ids[0])
        digest = hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()[:10]
        return f"{ids[0]}g{digest}"


@dataclass(frozen=True, slots=True)
class _Deferred:
    """Not attempted: try again at ``until`` (None: after the usual backoff), no attempt counted."""

    reason: str
    detail: str
    until: datetime | None


@dataclass(frozen=True, slots=True)
class _Decision:
    """A row's new state and what happened (sent, retry, dead, fallback_zns, deferral)."""

    update: RowUpdate
    event: str


@dataclass(slots=True)
class _Lane:
    """One channel's sending lane within a batch."""

    channel: Channel
    semaphore: asyncio.Semaphore
    failures: int = 0  # consecutive RETRY outcomes in this batch
    last_failure: str = ""


@dataclass(slots=True)
class _Batch:
    rows: list[OutboxRow] = field(default_factory=list)
    groups: list[_Group] = field(default_factory=list)
    phones: dict[str, str | None] = field(default_factory=dict)
    decided: list[_Decision] = field(default_factory=list)  # decided without sending


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
        settings: DispatchSettings | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._channels = dict(channels)
        self._renderer = renderer
        self._settings = settings or DispatchSettings()
        self._rng = rng or random.Random()
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
        _observe(batch.rows, decided)
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
        directory = await outbox.recipients_of(connection, {row.recipient for row in rows})
        batch = _Batch(rows=rows)
        batch.phones = {account: officer.phone for account, officer in directory.items()}
        grouped: dict[tuple[str, str, str, str], list[OutboxRow]] = defaultdict(list)
        for row in rows:
            if row.channel not in self._channels:
                batch.decided.append(_dead(row, NOT_CONFIGURED))
                continue
            grouped[(row.recipient, row.channel, row.address, row.purpose)].append(row)
        size = settings.max_group_rows
        for (account, channel, address, purpose), members in grouped.items():
            members.sort(key=lambda row: row.id)
            recipient = _addressed(directory.get(account), account, channel, address)
            for start in range(0, len(members), size):
                batch.groups.append(
                    _Group(channel, purpose, recipient, members[start : start + size])
                )
        return batch

    # --- send --------------------------------------------------------------------------

    async def _send(self, batch: _Batch) -> list[_Decision]:
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
            decided.extend(self._decide(group, result, now, batch.phones))
        return decided

    async def _send_group(self, group: _Group, lane: _Lane) -> SendResult | _Deferred:
        async with lane.semaphore:
            resets_at = _quota_resets_at(lane.channel)
            if resets_at is not None:
                return _Deferred("quota", "quota used up, waiting for the reset", resets_at)
            if lane.failures >= self._settings.channel_failure_threshold:
                detail = f"not attempted, channel failing: {lane.last_failure}"
                return _Deferred("channel_failing", detail[:300], None)
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
                    Outcome.RETRY, f"render failed: {type(exc).__name__}: {exc}"[:300]
                )
            result = await lane.channel.send(message)
            if result.outcome is Outcome.RETRY:
                resets_at = _quota_resets_at(lane.channel)
                if resets_at is not None:  # the provider's quota, not this message, failed
                    return _Deferred("quota", result.detail, resets_at)
                lane.failures += 1
                lane.last_failure = result.detail
            else:
                lane.failures = 0
            return result

    # --- decide ------------------------------------------------------------------------

    def _decide(
        self,
        group: _Group,
        result: SendResult | _Deferred,
        now: datetime,
        phones: Mapping[str, str | None],
    ) -> list[_Decision]:
        rows = group.rows
        if isinstance(result, _Deferred):
            return [self._defer(row, result, now) for row in rows]
        outcome = result.outcome
        if outcome is Outcome.SENT:
            return [
                _Decision(outbox.sent(row, group.group_id, result.provider_id, at=now), "sent")
                for row in rows
            ]
        if outcome is Outcome.RETRY:
            return [self._retry(row, result, now) for row in rows]
        if outcome is Outcome.FALLBACK_ZNS:
            phone = phones.get(group.recipient.account)
            if "zalo_zns" not in self._channels:
                reason = f"{ZALO_UNREACHABLE} (ZNS {NOT_CONFIGURED}): {result.detail}"
            elif not phone:
                reason = f"{ZALO_UNREACHABLE} (no phone for ZNS): {result.detail}"
            else:
                error = f"OA cannot reach the officer, sending by ZNS: {result.detail}"
                return [
                    _Decision(outbox.moved_to_zns(row, phone, at=now, error=error), "fallback_zns")
                    for row in rows
                ]
            return [_dead(row, reason) for row in rows]
        if outcome is Outcome.NO_ZALO:
            return [_dead(row, f"{NO_ZALO} ({result.detail})") for row in rows]
        return [_dead(row, result.detail) for row in rows]

    def _retry(self, row: OutboxRow, result: SendResult, now: datetime) -> _Decision:
        attempts = row.attempts + 1
        if attempts >= self._settings.max_attempts:
            return _dead(row, f"gave up after {attempts} attempts: {result.detail}", attempts)
        delay = max(self._backoff(attempts), result.retry_after or 0.0)
        until = now + timedelta(seconds=delay)
        return _Decision(outbox.later(row, attempts, until, result.detail), "retry")

    def _defer(self, row: OutboxRow, deferred: _Deferred, now: datetime) -> _Decision:
        until = deferred.until or now + timedelta(seconds=self._backoff(row.attempts + 1))
        return _Decision(outbox.later(row, row.attempts, until, deferred.detail), deferred.reason)

    def _backoff(self, attempt: int) -> float:
        settings = self._settings
        return backoff_delay(
            attempt,
            base=settings.backoff_base.total_seconds(),
            cap=settings.backoff_cap.total_seconds(),
            rng=self._rng,
        )


def _observe(rows: Sequence[OutboxRow], decided: Sequence[_Decision]) -> None:
    """Count rows by what became of them (after the commit: only what really happened)."""
    before = {row.id: row for row in rows}
    outcomes: dict[str, int] = defaultdict(int)
    for decision in decided:
        change, event = decision.update, decision.event
        row = before[change.id]
        channel = row.channel if row.channel in KNOWN_CHANNELS else "other"
        outcomes[event] += 1
        if event == "sent" and change.sent_at is not None:
            metrics.NOTIFICATIONS_SENT.labels(channel=channel).inc()
            metrics.NOTIFICATION_DELIVERY_SECONDS.labels(channel=channel).observe(
                max((change.sent_at - row.created_at).total_seconds(), 0.0)
            )
        elif event == "retry":
            metrics.NOTIFICATIONS_FAILED.labels(channel=channel, outcome="retry").inc()
        elif event == "dead":
            metrics.NOTIFICATIONS_FAILED.labels(channel=channel, outcome="dead").inc()
            metrics.NOTIFICATIONS_DEAD.labels(channel=channel).inc()
            log.warning(
                "notification dead",
                extra={"notification_id": row.id, "channel": channel, "reason": change.last_error},
            )
        elif event == "fallback_zns":
            metrics.NOTIFICATIONS_FALLBACK.inc()
        else:
            metrics.NOTIFICATIONS_DEFERRED.labels(channel=channel, reason=event).inc()
    log.info("dispatched", extra={"rows": len(decided), **outcomes})


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


def _dead(row: OutboxRow, reason: str, attempts: int | None = None) -> _Decision:
    return _Decision(outbox.dead(row, reason=reason, attempts=attempts), "dead")
