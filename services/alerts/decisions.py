"""What becomes of each outbox row once its message was tried: the dispatcher's decisions.

A group of rows went out as one message (or was held back); every row of it becomes sent,
pending again with backoff (an attempt counted), deferred (no attempt counted: a provider quota
used up, or the channel kept failing earlier in the batch), a ZNS row to the officer's phone
(the Zalo OA cannot reach them), or dead (after ``max_attempts`` or on a permanent failure).
Kept apart from the sending so these rules can be read, and changed, on their own.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.alerts import outbox
from services.alerts.channels.base import Recipient, SendOutcome, SendResult, backoff_delay
from services.alerts.outbox import OutboxRow, RowUpdate
from shared import metrics

log = logging.getLogger("doisoat.alerts.dispatcher")

NOT_CONFIGURED = "channel not configured"
NO_ZALO = "no Zalo account: email only"
ZALO_UNREACHABLE = "không liên lạc được qua Zalo"
KNOWN_CHANNELS = frozenset({"email", "zalo_oa", "zalo_zns"})


@dataclass(slots=True)
class Group:
    """Rows that go out as one message."""

    channel: str
    purpose: str
    recipient: Recipient
    rows: list[OutboxRow]

    @property
    def group_id(self) -> int:
        """The smallest row id: what every row of the message records as its group."""
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
class Deferred:
    """Not attempted: try again at ``until`` (None: after the usual backoff), no attempt counted."""

    reason: str
    detail: str
    until: datetime | None


@dataclass(frozen=True, slots=True)
class Decision:
    """A row's new state and what happened (sent, retry, dead, fallback_zns, deferral)."""

    update: RowUpdate
    event: str


class Decider:
    """Turns the result of one group's send into each row's new state."""

    def __init__(
        self,
        *,
        max_attempts: int,
        backoff_base: timedelta,
        backoff_cap: timedelta,
        channels: Collection[str],
        rng: random.Random,
    ) -> None:
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base.total_seconds()
        self._backoff_cap = backoff_cap.total_seconds()
        self._zns_configured = "zalo_zns" in channels
        self._rng = rng

    def decide(
        self,
        group: Group,
        result: SendResult | Deferred,
        now: datetime,
        phones: Mapping[str, str | None],
    ) -> list[Decision]:
        """One decision per row of ``group``."""
        rows = group.rows
        if isinstance(result, Deferred):
            return [self._defer(row, result, now) for row in rows]
        outcome = result.outcome
        if outcome is SendOutcome.SENT:
            return [
                Decision(outbox.sent(row, group.group_id, result.provider_id, at=now), "sent")
                for row in rows
            ]
        if outcome is SendOutcome.RETRY:
            return [self._retry(row, result, now) for row in rows]
        if outcome is SendOutcome.FALLBACK_ZNS:
            phone = phones.get(group.recipient.account)
            if not self._zns_configured:
                reason = f"{ZALO_UNREACHABLE} (ZNS {NOT_CONFIGURED}): {result.detail}"
            elif not phone:
                reason = f"{ZALO_UNREACHABLE} (no phone for ZNS): {result.detail}"
            else:
                error = f"OA cannot reach the officer, sending by ZNS: {result.detail}"
                return [
                    Decision(outbox.moved_to_zns(row, phone, at=now, error=error), "fallback_zns")
                    for row in rows
                ]
            return [dead(row, reason) for row in rows]
        if outcome is SendOutcome.NO_ZALO:
            return [dead(row, f"{NO_ZALO} ({result.detail})") for row in rows]
        return [dead(row, result.detail) for row in rows]

    def _retry(self, row: OutboxRow, result: SendResult, now: datetime) -> Decision:
        attempts = row.attempts + 1
        if attempts >= self._max_attempts:
            return dead(row, f"gave up after {attempts} attempts: {result.detail}", attempts)
        delay = max(self._backoff(attempts), result.retry_after or 0.0)
        until = now + timedelta(seconds=delay)
        return Decision(outbox.later(row, attempts, until, result.detail), "retry")

    def _defer(self, row: OutboxRow, deferred: Deferred, now: datetime) -> Decision:
        until = deferred.until or now + timedelta(seconds=self._backoff(row.attempts + 1))
        return Decision(outbox.later(row, row.attempts, until, deferred.detail), deferred.reason)

    def _backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, base=self._backoff_base, cap=self._backoff_cap, rng=self._rng)


def dead(row: OutboxRow, reason: str, attempts: int | None = None) -> Decision:
    """Given up on ``row``, the reason kept for the operators."""
    return Decision(outbox.dead(row, reason=reason, attempts=attempts), "dead")


def observe(rows: Sequence[OutboxRow], decided: Sequence[Decision]) -> None:
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
