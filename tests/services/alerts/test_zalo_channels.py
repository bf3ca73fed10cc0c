"""The Zalo OA and ZNS channels against an HTTP server speaking Zalo's API on loopback."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.alerts.channels import CHANNELS
from services.alerts.channels.base import SendOutcome, correlation_id, truncate_text
from services.alerts.channels.zalo import (
    InMemoryTokenStore,
    TokenState,
    ZaloApi,
    ZaloOAChannel,
    ZaloZNSChannel,
    normalize_phone,
)
from services.alerts.channels.zalo_settings import ZaloSettings
from shared.clock import fixed_clock
from tests.fakes.smtp_server import free_port
from tests.fakes.zalo_server import FakeZaloServer, ZaloFakeState
from tests.services.alerts.conftest import TEMPLATE_DATA, TEMPLATE_ID, TEXT, MakeMessage


def _changed(settings: ZaloSettings, changes: dict[str, object]) -> ZaloSettings:
    """A validated copy (``model_copy`` would skip validation and keep plain strings)."""
    return ZaloSettings.model_validate({**settings.model_dump(), **changes})


# --- delivery ---


async def test_oa_message_delivered(
    oa_channel: ZaloOAChannel,
    zalo: ZaloFakeState,
    token_store: InMemoryTokenStore,
    make_message: MakeMessage,
) -> None:
    result = await oa_channel.send(make_message())

    assert result.outcome is SendOutcome.SENT
    [sent] = zalo.oa_messages
    assert sent["user_id"] == "4512903317480012345"
    assert sent["text"] == TEXT
    assert result.provider_id == sent["message_id"]
    assert token_store.saves == 1  # the first refresh rotated the token and saved it


async def test_oa_text_is_cut_to_zalo_limit(
    oa_channel: ZaloOAChannel, zalo: ZaloFakeState, make_message: MakeMessage
) -> None:
    long_text = "Hồ sơ quá hạn chưa có văn bản xin lỗi. " * 100

    assert (await oa_channel.send(make_message(text=long_text))).outcome is SendOutcome.SENT
    [sent] = zalo.oa_messages
    assert len(sent["text"]) <= 2000 and sent["text"].endswith("…")


async def test_zns_delivered_with_tracking_id(
    zns_channel: ZaloZNSChannel, zalo: ZaloFakeState, make_message: MakeMessage
) -> None:
    result = await zns_channel.send(make_message("n000123", phone="0912 345 678"))

    assert result.outcome is SendOutcome.SENT
    [sent] = zalo.zns_messages
    assert sent["phone"] == "84912345678"
    assert sent["template_id"] == TEMPLATE_ID
    assert sent["template_data"] == TEMPLATE_DATA
    assert sent["tracking_id"] == "n000123"
    assert result.provider_id == sent["msg_id"]
    assert (zns_channel.quota_daily, zns_channel.quota_remaining) == (500, 499)
    assert not zns_channel.quota_exhausted


async def test_zns_tracking_id_of_an_unsafe_notification_id_is_accepted_and_stable(
    zns_channel: ZaloZNSChannel, zalo: ZaloFakeState, make_message: MakeMessage
) -> None:
    notification_id = "outbox-2024-11-06/" + "x" * 60

    for _ in range(2):  # a retry carries the same tracking id
        assert (await zns_channel.send(make_message(notification_id))).outcome is SendOutcome.SENT

    first, second = (m["tracking_id"] for m in zalo.zns_messages)
    assert first == second == correlation_id(notification_id)
    assert len(first) <= 48 and first.isalnum()


# --- tokens ---


@pytest.mark.parametrize("expired_error", [-216, -220])
async def test_expired_token_mid_run_is_refreshed_and_rotated(
    oa_channel: ZaloOAChannel,
    zns_channel: ZaloZNSChannel,
    zalo: ZaloFakeState,
    zalo_server: FakeZaloServer,
    zalo_settings: ZaloSettings,
    token_store: InMemoryTokenStore,
    make_message: MakeMessage,
    expired_error: int,
) -> None:
    zalo.expired_error = expired_error
    assert (await oa_channel.send(make_message("n1"))).outcome is SendOutcome.SENT
    first = token_store.state
    assert first is not None

    zalo.expire_access_tokens()
    oa = await oa_channel.send(make_message("n2"))
    zns = await zns_channel.send(make_message("n3"))

    assert (oa.outcome, zns.outcome) == (SendOutcome.SENT, SendOutcome.SENT)
    assert len(zalo.oa_messages) == 2 and len(zalo.zns_messages) == 1
    second = token_store.state
    assert second is not None and second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    assert [outcome for _, outcome in zalo.refresh_attempts] == ["ok", "ok"]
    # Refresh tokens are single use: the one spent on the second refresh is refused now.
    async with httpx.AsyncClient() as http:
        reused = await http.post(
            f"{zalo_server.base_url}/v4/oa/access_token",
            data={
                "refresh_token": first.refresh_token,
                "app_id": zalo.app_id,
                "grant_type": "refresh_token",
            },
            headers={"secret_key": zalo.secret_key},
        )
    assert reused.json()["error"] == -14014
    assert zalo.is_used_refresh_token(zalo_settings.refresh_token.get_secret_value())


async def test_concurrent_sends_refresh_once(
    oa_channel: ZaloOAChannel,
    zalo: ZaloFakeState,
    zalo_api: ZaloApi,
    make_message: MakeMessage,
) -> None:
    assert (await oa_channel.send(make_message("warm"))).outcome is SendOutcome.SENT
    zalo.expire_access_tokens()

    results = await asyncio.gather(*(oa_channel.send(make_message(f"n{i}")) for i in range(20)))

    assert {r.outcome for r in results} == {SendOutcome.SENT}
    assert zalo_api.tokens.refreshes == 2  # the warm-up and one after expiry, not twenty
    assert [outcome for _, outcome in zalo.refresh_attempts] == ["ok", "ok"]


async def test_token_refused_twice_is_retry_without_looping(
    oa_channel: ZaloOAChannel, zalo: ZaloFakeState, make_message: MakeMessage
) -> None:
    zalo.access_ttl = 0  # Zalo hands out tokens that are already expired

    result = await oa_channel.send(make_message())

    assert result.outcome is SendOutcome.RETRY
    assert "-220" in result.detail
    assert len(zalo.refresh_attempts) == 2 and zalo.oa_messages == []


async def test_refused_refresh_is_retry_with_a_pause(
    zalo: ZaloFakeState,
    zalo_settings: ZaloSettings,
    token_store: InMemoryTokenStore,
    make_message: MakeMessage,
) -> None:
    wrong = _changed(zalo_settings, {"secret_key": "not-the-secret"})
    api = ZaloApi(wrong, token_store)
    channel = ZaloOAChannel(api)
    try:
        result = await channel.send(make_message())
    finally:
        await channel.aclose()

    assert result.outcome is SendOutcome.RETRY
    assert "refused" in result.detail and result.retry_after
    assert token_store.state is None and zalo.oa_messages == []
    assert [outcome for _, outcome in zalo.refresh_attempts] == ["bad_secret"]


class FlakyStore(InMemoryTokenStore):
    """A store whose first save fails, like a database that blinked."""

    def __init__(self) -> None:
        super().__init__()
        self.failures_left = 1

    async def save(self, state: TokenState) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionError("database unavailable")
        await super().save(state)


async def test_rotated_refresh_token_survives_a_failed_save(
    zalo: ZaloFakeState, zalo_settings: ZaloSettings, make_message: MakeMessage
) -> None:
    store = FlakyStore()
    channel = ZaloOAChannel(ZaloApi(zalo_settings, store))
    try:
        first = await channel.send(make_message("n1"))
        second = await channel.send(make_message("n2"))
    finally:
        await channel.aclose()

    assert (first.outcome, second.outcome) == (SendOutcome.RETRY, SendOutcome.SENT)
    assert [outcome for _, outcome in zalo.refresh_attempts] == ["ok"]  # no second refresh
    assert store.state is not None and not zalo.is_used_refresh_token(store.state.refresh_token)


async def test_a_stored_token_is_used_without_refreshing(
    zalo: ZaloFakeState, zalo_settings: ZaloSettings, make_message: MakeMessage
) -> None:
    stored = TokenState(
        access_token=zalo.issue_access_token(),
        refresh_token=zalo.issue_refresh_token(),
        expires_at=datetime.now(UTC) + timedelta(hours=20),
    )
    channel = ZaloOAChannel(ZaloApi(zalo_settings, InMemoryTokenStore(stored)))
    try:
        assert (await channel.send(make_message())).outcome is SendOutcome.SENT
    finally:
        await channel.aclose()
    assert zalo.refresh_attempts == []


async def test_channels_share_one_client_closed_by_the_last(zalo_settings: ZaloSettings) -> None:
    api = ZaloApi(zalo_settings, InMemoryTokenStore())
    oa, zns = ZaloOAChannel(api), ZaloZNSChannel(api)

    await oa.aclose()
    assert not api.http.is_closed
    await zns.aclose()
    assert api.http.is_closed


# --- error mapping ---


@pytest.mark.parametrize("code", [-213, -230, -244])
async def test_oa_cannot_reach_user_falls_back_to_zns(
    oa_channel: ZaloOAChannel, zalo: ZaloFakeState, make_message: MakeMessage, code: int
) -> None:
    zalo.oa_unreachable["4512903317480012345"] = code

    result = await oa_channel.send(make_message())

    assert result.outcome is SendOutcome.FALLBACK_ZNS
    assert str(code) in result.detail and zalo.oa_messages == []


async def test_phone_without_zalo_is_no_zalo(
    zns_channel: ZaloZNSChannel, zalo: ZaloFakeState, make_message: MakeMessage
) -> None:
    zalo.no_zalo_phones.add("84912345678")

    result = await zns_channel.send(make_message())

    assert result.outcome is SendOutcome.NO_ZALO
    assert zalo.zns_messages == []


VN_10AM = datetime(2024, 11, 6, 3, 0, tzinfo=UTC)  # 10:00 in Hà Nội: 14 h to local midnight


async def test_oa_quota_is_retry_until_local_midnight(
    zalo: ZaloFakeState, zalo_settings: ZaloSettings, make_message: MakeMessage
) -> None:
    stored = TokenState(
        zalo.issue_access_token(), zalo.issue_refresh_token(), VN_10AM + timedelta(hours=20)
    )
    channel = ZaloOAChannel(
        ZaloApi(zalo_settings, InMemoryTokenStore(stored), clock=fixed_clock(VN_10AM))
    )
    zalo.oa_quota_remaining = 0
    try:
        result = await channel.send(make_message())
    finally:
        await channel.aclose()

    assert result.outcome is SendOutcome.RETRY
    assert result.retry_after == 14 * 3600
    assert channel.quota_exhausted
    assert channel.quota_resets_at == datetime(2024, 11, 6, 17, 0, tzinfo=UTC)


async def test_zns_quota_last_message_then_exhausted(
    zns_channel: ZaloZNSChannel, zalo: ZaloFakeState, make_message: MakeMessage
) -> None:
    zalo.zns_remaining = 1

    last = await zns_channel.send(make_message("n1"))
    assert last.outcome is SendOutcome.SENT
    assert zns_channel.quota_remaining == 0 and zns_channel.quota_exhausted

    refused = await zns_channel.send(make_message("n2"))
    assert refused.outcome is SendOutcome.RETRY
    assert refused.retry_after is not None and 0 < refused.retry_after <= 86400
    assert len(zalo.zns_messages) == 1


async def test_rate_limit_is_retry_with_a_hint(
    oa_channel: ZaloOAChannel, zalo: ZaloFakeState, make_message: MakeMessage
) -> None:
    zalo.rate_limited = True

    result = await oa_channel.send(make_message())

    assert result.outcome is SendOutcome.RETRY and result.retry_after == 60


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_server_error_is_retry_then_delivered(
    zns_channel: ZaloZNSChannel, zalo: ZaloFakeState, make_message: MakeMessage, status: int
) -> None:
    zalo.fail_next = [status]

    assert (await zns_channel.send(make_message())).outcome is SendOutcome.RETRY
    assert (await zns_channel.send(make_message())).outcome is SendOutcome.SENT
    assert len(zalo.zns_messages) == 1


async def test_connection_refused_is_retry(
    zalo_settings: ZaloSettings, make_message: MakeMessage
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    settings = _changed(
        zalo_settings, {"oa_api_base": nowhere, "zns_api_base": nowhere, "oauth_base": nowhere}
    )
    api = ZaloApi(settings, InMemoryTokenStore())
    oa, zns = ZaloOAChannel(api), ZaloZNSChannel(api)
    try:
        assert (await oa.send(make_message())).outcome is SendOutcome.RETRY
        assert (await zns.send(make_message())).outcome is SendOutcome.RETRY
    finally:
        await oa.aclose()
        await zns.aclose()


async def test_timeout_is_retry(
    zalo: ZaloFakeState, zalo_settings: ZaloSettings, make_message: MakeMessage
) -> None:
    settings = _changed(zalo_settings, {"timeout": 0.3})
    channel = ZaloOAChannel(ZaloApi(settings, InMemoryTokenStore()))
    zalo.delay_next = 1.0
    try:
        result = await channel.send(make_message())
    finally:
        await channel.aclose()

    assert result.outcome is SendOutcome.RETRY and "Timeout" in result.detail


async def test_unknown_template_fails_with_zalo_code_and_message(
    zalo_server: FakeZaloServer, zalo_settings: ZaloSettings, make_message: MakeMessage
) -> None:
    settings = _changed(zalo_settings, {"zns_template_id": "999999"})
    channel = ZaloZNSChannel(ZaloApi(settings, InMemoryTokenStore()))
    try:
        result = await channel.send(make_message())
    finally:
        await channel.aclose()

    assert result.outcome is SendOutcome.FAILED
    assert result.detail == "zalo error -109: Template ID invalid"


async def test_missing_recipient_fields_fail_without_calling_zalo(
    oa_channel: ZaloOAChannel,
    zns_channel: ZaloZNSChannel,
    zalo: ZaloFakeState,
    make_message: MakeMessage,
) -> None:
    assert (await oa_channel.send(make_message(zalo_user_id=None))).outcome is SendOutcome.FAILED
    assert (await zns_channel.send(make_message(phone="12ab"))).outcome is SendOutcome.FAILED
    assert zalo.refresh_attempts == []


# --- the fake refuses what Zalo refuses ---


async def test_fake_refuses_long_tracking_id_and_unknown_token(
    zalo_server: FakeZaloServer, zalo: ZaloFakeState
) -> None:
    body = {
        "phone": "84912345678",
        "template_id": TEMPLATE_ID,
        "template_data": TEMPLATE_DATA,
        "tracking_id": "a" * 49,
    }
    url = f"{zalo_server.base_url}/message/template"
    async with httpx.AsyncClient() as http:
        long_id = await http.post(
            url, json=body, headers={"access_token": zalo.issue_access_token()}
        )
        unknown = await http.post(url, json=body, headers={"access_token": "forged"})
    assert long_id.json()["error"] == -100
    assert unknown.json()["error"] == -124
    assert zalo.zns_messages == []


# --- helpers ---


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0912345678", "84912345678"),
        ("+84 912 345 678", "84912345678"),
        ("84912345678", "84912345678"),
        ("091-234-5678", "84912345678"),
        ("12345", None),
        ("", None),
        ("09123abc78", None),
    ],
)
def test_normalize_phone(raw: str, expected: str | None) -> None:
    assert normalize_phone(raw) == expected


def test_correlation_id_and_truncation() -> None:
    assert correlation_id("n000123") == "n000123"
    assert correlation_id("a-b") != correlation_id("ab")
    assert truncate_text("ngắn", 2000) == "ngắn"
    cut = truncate_text("từ " * 1000, 2000)
    assert len(cut) <= 2000 and cut.endswith("từ…")


async def test_registry_and_zns_needs_a_template(zalo_settings: ZaloSettings) -> None:
    assert CHANNELS["zalo_oa"] is ZaloOAChannel and CHANNELS["zalo_zns"] is ZaloZNSChannel
    no_template = _changed(zalo_settings, {"zns_template_id": None})
    api = ZaloApi(no_template, InMemoryTokenStore())
    with pytest.raises(ValueError, match="zns_template_id"):
        ZaloZNSChannel(api)
    await api.http.aclose()
