"""The one small interface every notification channel implements.

A channel delivers one :class:`Message` and answers a :class:`SendResult`; it never raises and
never schedules retries itself. The dispatcher (outbox) decides what to do with the outcome,
using :func:`backoff_delay` and the result's ``retry_after`` hint.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from shared import metrics

logger = logging.getLogger("doisoat.alerts.channels")

_ALNUM = re.compile(r"[A-Za-z0-9]+")
_EMAIL_LIKE = re.compile(r"[^\s<>\"']+@[^\s<>\"']+")
_PHONE_LIKE = re.compile(r"\+?\d[\d .-]{7,}\d")


@dataclass(frozen=True, slots=True)
class Recipient:
    """An officer as the directory knows them (contracts §3)."""

    account: str
    full_name: str
    email: str | None
    zalo_user_id: str | None
    phone: str | None


@dataclass(frozen=True, slots=True)
class Message:
    """One notification for one recipient, as stored in the outbox.

    ``notification_id`` is the outbox row id: correlation ids (email ``Message-ID``, ZNS
    ``tracking_id``) derive from it, so a retry carries the same one.
    """

    notification_id: str
    recipient: Recipient
    subject: str
    text: str
    html: str | None
    template_data: Mapping[str, str]


class SendOutcome(StrEnum):
    """What one send attempt came to, so the dispatcher knows what to do with the outbox row."""

    SENT = "sent"
    RETRY = "retry"  # transient: back off, then try the same channel again
    FALLBACK_ZNS = "fallback_zns"  # the OA cannot reach this user: send by ZNS instead
    NO_ZALO = "no_zalo"  # the phone has no Zalo account: email only
    FAILED = "failed"  # permanent: retrying cannot help


@dataclass(frozen=True, slots=True)
class SendResult:
    """The answer of one attempt; ``detail`` never holds the message body or an address."""

    outcome: SendOutcome
    detail: str
    provider_id: str | None = None
    retry_after: float | None = None  # seconds the provider asked us to wait, when it said


class Channel(ABC):
    """Public :meth:`send` does metrics, logging and error containment around ``_send``."""

    name: ClassVar[str]

    async def send(self, message: Message) -> SendResult:
        """Deliver ``message`` once; never raises (except on cancellation)."""
        started = time.perf_counter()
        try:
            result = await self._send(message)
        except Exception as exc:
            # Network errors, timeouts and bugs alike: the outbox keeps the row and retries;
            # max attempts turn a persistent bug into a dead row rather than a crash loop.
            logger.warning(
                "channel=%s notification_id=%s unexpected %s",
                self.name,
                message.notification_id,
                type(exc).__name__,
                exc_info=True,
            )
            result = SendResult(SendOutcome.RETRY, redact(f"{type(exc).__name__}: {exc}")[:300])
        elapsed = time.perf_counter() - started
        metrics.NOTIFICATION_ATTEMPTS.labels(channel=self.name, outcome=result.outcome).inc()
        metrics.NOTIFICATION_SEND_SECONDS.labels(channel=self.name).observe(elapsed)
        logger.log(
            logging.INFO if result.outcome is SendOutcome.SENT else logging.WARNING,
            "notification channel=%s notification_id=%s outcome=%s duration_ms=%.1f "
            "provider_id=%s retry_after=%s detail=%r",
            self.name,
            message.notification_id,
            result.outcome.value,
            elapsed * 1000,
            result.provider_id,
            result.retry_after,
            redact(result.detail),
            extra={
                "channel": self.name,
                "notification_id": message.notification_id,
                "outcome": result.outcome.value,
                "duration_ms": round(elapsed * 1000, 1),
                "provider_id": result.provider_id,
            },
        )
        return result

    @abstractmethod
    async def _send(self, message: Message) -> SendResult:
        """Deliver one message; may raise, :meth:`send` turns exceptions into RETRY."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release connections; the channel is not used afterwards."""


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before retry number ``attempt`` (1 = first retry), "full jitter".

    Uniform in ``[0, min(cap, base * 2 ** (attempt - 1))]``: spreads retries of many rows
    failing together (an SMTP outage) instead of having them hammer the server in waves.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if base <= 0 or cap < base:
        raise ValueError("need 0 < base <= cap")
    # Beyond 2**62 the ceiling is the cap anyway; stop before the float overflows.
    ceiling = cap if attempt > 63 else min(cap, base * 2 ** (attempt - 1))
    return rng.uniform(0, ceiling)


def correlation_id(notification_id: str, *, max_length: int = 48) -> str:
    """A provider-safe id (ASCII letters and digits only) derived from the outbox id.

    Ids that already qualify are kept as they are (readable in provider consoles); others are
    hashed, so the same notification always gets the same id and distinct ones stay distinct.
    """
    if _ALNUM.fullmatch(notification_id) and len(notification_id) <= max_length:
        return notification_id
    return hashlib.sha256(notification_id.encode("utf-8")).hexdigest()[:max_length]


def redact(text: str) -> str:
    """Mask what looks like an email address or a phone number (providers echo them back)."""
    return _PHONE_LIKE.sub("<phone>", _EMAIL_LIKE.sub("<email>", text))


def truncate_text(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters at a word boundary, marking the cut with "…"."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    cut = head.rfind(" ")
    if cut > limit * 0.8:  # only back up to a space when little is lost
        head = head[:cut]
    return head.rstrip() + "…"
