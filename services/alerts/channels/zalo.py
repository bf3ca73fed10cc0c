"""Zalo channels: OA messages to followers, ZNS template messages to phone numbers.

Both talk to Zalo with the same OA access token, so they share one :class:`ZaloApi` (one HTTP
connection pool, one :class:`ZaloTokenManager`). Field names and error codes follow
``shared/reference/zalo.md``; sources disagree on a few codes, so messages are read too.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from datetime import datetime, timedelta
from typing import Any

import httpx

from services.alerts.channels.base import (
    Channel,
    Message,
    SendOutcome,
    SendResult,
    correlation_id,
    truncate_text,
)
from services.alerts.channels.zalo_settings import ZaloSettings
from services.alerts.channels.zalo_tokens import (
    InMemoryTokenStore,
    TokenState,
    TokenStore,
    ZaloTokenError,
    ZaloTokenManager,
    ZaloUnavailable,
    json_or_none,
)
from shared import metrics
from shared.clock import VN_TZ, Clock, system_clock

__all__ = [
    "InMemoryTokenStore",
    "TokenState",
    "TokenStore",
    "ZaloApi",
    "ZaloOAChannel",
    "ZaloSettings",
    "ZaloTokenError",
    "ZaloTokenManager",
    "ZaloUnavailable",
    "ZaloZNSChannel",
    "normalize_phone",
]

OA_TEXT_LIMIT = 2000  # characters Zalo accepts in one OA text message
TOKEN_ERRORS = frozenset({-124, -216, -220})  # access token invalid, expired or removed
RATE_LIMITED = -32
OA_UNREACHABLE = frozenset({-213, -230, -244})  # not following, 7 days silent, user opted out
OA_QUIET_HOURS = -234  # no broadcast between 22:00 and 06:00
NO_ZALO_ACCOUNT = -118
QUOTA_ERRORS = frozenset({-211, -144})  # OA out of quota; ZNS daily quota of the OA used up
BALANCE_ERRORS = frozenset({-115, -321})  # ZNS / Zalo Cloud account without money
RATE_LIMIT_PAUSE = 60.0
BALANCE_PAUSE = 3600.0
TOKEN_REFUSED_PAUSE = 300.0


class ZaloApi:
    """What the OA and ZNS channels share: the HTTP client and the token manager.

    Each channel built on it holds a reference; the client closes when the last one does.
    """

    def __init__(
        self,
        settings: ZaloSettings,
        store: TokenStore,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._owns_http = http is None
        self.http = http or httpx.AsyncClient(timeout=settings.timeout)
        self.tokens = ZaloTokenManager(settings, store, self.http, clock)
        self._users = 0

    def acquire(self) -> None:
        self._users += 1

    async def release(self) -> None:
        self._users -= 1
        if self._users <= 0 and self._owns_http:
            await self.http.aclose()

    async def post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST with the OA token; on a token error, refresh and try exactly once more."""
        answer: dict[str, Any] = {}
        for attempt in range(2):
            token = await self.tokens.access_token()
            answer = await self._post_once(url, body, token)
            if attempt == 0 and _is_token_error(answer):
                await self.tokens.invalidate(token)
                continue
            break
        return answer

    async def _post_once(self, url: str, body: dict[str, Any], token: str) -> dict[str, Any]:
        response = await self.http.post(url, json=body, headers={"access_token": token})
        answer = json_or_none(response)
        if response.status_code == 429 or response.status_code >= 500:
            raise ZaloUnavailable(
                f"HTTP {response.status_code}", _retry_after_header(response.headers)
            )
        if answer is None:
            if response.is_success:
                raise ZaloUnavailable(f"HTTP {response.status_code} without a JSON answer")
            return {"error": -response.status_code, "message": f"HTTP {response.status_code}"}
        return answer


class _ZaloChannel(Channel):
    """Error mapping shared by OA and ZNS, and the quota pause the dispatcher reads."""

    def __init__(self, api: ZaloApi) -> None:
        self._api = api
        self._paused_until: datetime | None = None
        api.acquire()

    @property
    def quota_exhausted(self) -> bool:
        """True while Zalo said our quota is used up; clears itself when the day turns."""
        return self._paused_until is not None and self._api.clock() < self._paused_until

    @property
    def quota_resets_at(self) -> datetime | None:
        return self._paused_until if self.quota_exhausted else None

    async def _send(self, message: Message) -> SendResult:
        try:
            return await self._deliver(message)
        except ZaloTokenError as exc:
            return SendResult(SendOutcome.RETRY, str(exc)[:300], retry_after=TOKEN_REFUSED_PAUSE)
        except ZaloUnavailable as exc:
            return SendResult(
                SendOutcome.RETRY, f"zalo unavailable: {exc}", retry_after=exc.retry_after
            )
        except httpx.HTTPError as exc:
            return SendResult(SendOutcome.RETRY, f"zalo unreachable: {type(exc).__name__}")

    @abstractmethod
    async def _deliver(self, message: Message) -> SendResult:
        """Call Zalo and map its answer; transport and token failures are handled above."""

    def _map_error(self, answer: dict[str, Any]) -> SendResult:
        """The outcome of a non-zero ``error`` common to both APIs."""
        code = _error_code(answer)
        text = str(answer.get("message", ""))[:200]
        detail = f"zalo error {code}: {text}"
        if _is_token_error(answer):
            return SendResult(SendOutcome.RETRY, f"{detail} (after a refresh)")
        if code == RATE_LIMITED:
            return SendResult(SendOutcome.RETRY, detail, retry_after=RATE_LIMIT_PAUSE)
        if code in BALANCE_ERRORS:  # before "quota": ZNS -115 reads "Out of quota"
            self._paused_until = self._api.clock() + timedelta(seconds=BALANCE_PAUSE)
            return SendResult(SendOutcome.RETRY, detail, retry_after=BALANCE_PAUSE)
        if code in QUOTA_ERRORS or "quota" in text.lower():
            return SendResult(SendOutcome.RETRY, detail, retry_after=self._pause_for_quota())
        return SendResult(SendOutcome.FAILED, detail)

    def _seconds_until_hour(self, hour: int) -> float:
        """Seconds until the next ``hour``:00 in Vietnam (Zalo's daily quotas reset at 0:00)."""
        local = self._api.clock().astimezone(VN_TZ)
        target = local.replace(hour=hour, minute=0, second=0, microsecond=0)
        if target <= local:
            target += timedelta(days=1)
        return (target - local).total_seconds()

    def _pause_for_quota(self) -> float:
        """Mark the quota used up until local midnight; answers the pause in seconds."""
        seconds = self._seconds_until_hour(0)
        self._paused_until = self._api.clock() + timedelta(seconds=seconds)
        return seconds

    async def aclose(self) -> None:
        await self._api.release()


class ZaloOAChannel(_ZaloChannel):
    """Customer-service text message from the OA to one of its followers."""

    name = "zalo_oa"

    async def _deliver(self, message: Message) -> SendResult:
        user_id = message.recipient.zalo_user_id
        if not user_id:
            return SendResult(SendOutcome.FAILED, "recipient has no zalo_user_id")
        answer = await self._api.post(
            f"{self._api.settings.oa_api_base}/v3.0/oa/message/cs",
            {
                "recipient": {"user_id": user_id},
                "message": {"text": truncate_text(message.text, OA_TEXT_LIMIT)},
            },
        )
        code = _error_code(answer)
        if code == 0:
            self._paused_until = None  # a quota error earlier today no longer holds
            data = answer.get("data") or {}
            return SendResult(
                SendOutcome.SENT, "oa message sent", provider_id=_str(data, "message_id")
            )
        detail = f"zalo error {code}: {str(answer.get('message', ''))[:200]}"
        if code in OA_UNREACHABLE:
            return SendResult(SendOutcome.FALLBACK_ZNS, detail)
        if code == OA_QUIET_HOURS:
            return SendResult(SendOutcome.RETRY, detail, retry_after=self._seconds_until_hour(6))
        return self._map_error(answer)


class ZaloZNSChannel(_ZaloChannel):
    """Template message (ZNS) to a phone number, for officers who do not follow the OA."""

    name = "zalo_zns"

    def __init__(self, api: ZaloApi) -> None:
        if not api.settings.zns_template_id:
            raise ValueError("ZaloZNSChannel needs zns_template_id (DOISOAT_ZALO_ZNS_TEMPLATE_ID)")
        super().__init__(api)
        self.quota_daily: int | None = None
        self.quota_remaining: int | None = None

    async def _deliver(self, message: Message) -> SendResult:
        phone = normalize_phone(message.recipient.phone or "")
        if phone is None:
            return SendResult(SendOutcome.FAILED, "recipient has no valid phone number")
        body: dict[str, Any] = {
            "phone": phone,
            "template_id": self._api.settings.zns_template_id,
            "template_data": {key: str(value) for key, value in message.template_data.items()},
            "tracking_id": correlation_id(message.notification_id, max_length=48),
        }
        if self._api.settings.zns_development_mode:
            body["mode"] = "development"
        answer = await self._api.post(f"{self._api.settings.zns_api_base}/message/template", body)
        code = _error_code(answer)
        if code == 0:
            data = answer.get("data") or {}
            self._note_quota(data.get("quota") or {})
            return SendResult(
                SendOutcome.SENT,
                f"zns sent, quota left {self.quota_remaining}/{self.quota_daily}",
                provider_id=_str(data, "msg_id"),
            )
        if code == NO_ZALO_ACCOUNT:
            detail = f"zalo error {code}: {str(answer.get('message', ''))[:200]}"
            return SendResult(SendOutcome.NO_ZALO, detail)
        return self._map_error(answer)

    def _note_quota(self, quota: dict[str, Any]) -> None:
        """Remember what Zalo said is left; at 0 pause ZNS until the quota resets."""
        self.quota_daily = _int_or_none(quota.get("dailyQuota"))
        self.quota_remaining = _int_or_none(quota.get("remainingQuota"))
        if self.quota_remaining is None:
            return
        metrics.ZNS_QUOTA_REMAINING.set(self.quota_remaining)
        if self.quota_remaining <= 0:
            self._pause_for_quota()
        else:
            self._paused_until = None


def normalize_phone(phone: str) -> str | None:
    """``84xxxxxxxxx`` from the forms officers type (0912…, +84 912…, 84-912…), else None."""
    digits = re.sub(r"[\s().-]", "", phone).removeprefix("+")
    if not digits.isdigit():
        return None
    if digits.startswith("0"):
        digits = "84" + digits[1:]
    if not digits.startswith("84") or not 10 <= len(digits) <= 12:
        return None
    return digits


def _error_code(answer: dict[str, Any]) -> int:
    try:
        return int(answer.get("error", 0))
    except (TypeError, ValueError):
        return -100


def _is_token_error(answer: dict[str, Any]) -> bool:
    code = _error_code(answer)
    text = str(answer.get("message", "")).lower()
    return code in TOKEN_ERRORS or (code != 0 and "access token" in text)


def _retry_after_header(headers: httpx.Headers) -> float | None:
    try:
        return max(0.0, float(headers.get("retry-after", "")))
    except ValueError:
        return None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _str(data: Any, key: str) -> str | None:
    value = data.get(key) if isinstance(data, dict) else None
    return None if value is None else str(value)
