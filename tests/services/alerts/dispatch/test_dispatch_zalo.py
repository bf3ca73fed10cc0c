"""The dispatcher with the Zalo channels against the fake Zalo server, on both backends."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.alerts.channels.base import Channel
from services.alerts.channels.email import EmailChannel, EmailSettings
from services.alerts.channels.zalo import (
    TokenState,
    ZaloApi,
    ZaloOAChannel,
    ZaloZNSChannel,
)
from services.alerts.channels.zalo_settings import ZaloSettings
from services.alerts.dispatcher import Dispatcher
from services.alerts.token_store import DatabaseTokenStore
from shared.clock import VN_TZ
from shared.models import ZaloToken
from tests.conftest import TEST_NOW
from tests.fakes.smtp_server import FakeSmtpServer
from tests.fakes.zalo_server import ZaloFakeState
from tests.services.alerts.dispatch.conftest import (
    MutableClock,
    add_officer,
    add_row,
    add_rows,
    outbox_rows,
    sample,
)
from tests.services.alerts.dispatch.plain_render import render
from tests.services.alerts.dispatch.tuning import dispatch_settings

UID = "4512903317480012345"
PHONE = "0912345678"
PHONE_84 = "84912345678"


@pytest.fixture
def store(
    engine: AsyncEngine, zalo_settings: ZaloSettings, clock: MutableClock
) -> DatabaseTokenStore:
    return DatabaseTokenStore(engine, zalo_settings.app_id, clock=clock)


@pytest.fixture
async def channels(
    zalo_settings: ZaloSettings,
    store: DatabaseTokenStore,
    clock: MutableClock,
    email_settings: EmailSettings,
) -> AsyncIterator[dict[str, Channel]]:
    api = ZaloApi(zalo_settings, store, clock=clock)
    built: dict[str, Channel] = {
        "email": EmailChannel(email_settings),
        "zalo_oa": ZaloOAChannel(api),
        "zalo_zns": ZaloZNSChannel(api),
    }
    yield built
    for channel in built.values():
        await channel.aclose()


def dispatcher(
    engine: AsyncEngine, clock: MutableClock, channels: dict[str, Channel]
) -> Dispatcher:
    return Dispatcher(
        engine=engine,
        clock=clock,
        channels=channels,
        renderer=render,
        settings=dispatch_settings(),
        rng=random.Random(7),
    )


async def stored_token(engine: AsyncEngine) -> Row[Any]:
    async with engine.connect() as connection:
        return (await connection.execute(select(ZaloToken))).one()


async def test_token_expired_mid_run_is_refreshed_through_the_database(
    engine: AsyncEngine,
    clock: MutableClock,
    channels: dict[str, Channel],
    store: DatabaseTokenStore,
    zalo: ZaloFakeState,
) -> None:
    first_refresh = zalo.issue_refresh_token()
    await store.save(
        TokenState(zalo.issue_access_token(), first_refresh, TEST_NOW + timedelta(hours=25))
    )
    subject = dispatcher(engine, clock, channels)
    one = await add_row(engine, recipient="anh.nv", channel="zalo_oa", address=UID)
    assert await subject.dispatch_once() == 1
    assert zalo.refresh_attempts == []  # the stored token was good

    zalo.expire_access_tokens()  # Zalo revokes it mid-run: -220 on the next call
    two = await add_row(engine, recipient="anh.nv", channel="zalo_oa", address=UID)
    assert await subject.dispatch_once() == 1

    rows = await outbox_rows(engine)
    assert rows[one].status == rows[two].status == "sent"
    assert len(zalo.oa_messages) == 2
    assert zalo.refresh_attempts == [(first_refresh, "ok")]
    assert zalo.is_used_refresh_token(first_refresh)
    saved = await stored_token(engine)
    assert saved.refresh_token not in (first_refresh, "")
    assert not zalo.is_used_refresh_token(saved.refresh_token)  # the live one is kept
    assert saved.updated_at == TEST_NOW


async def test_oa_unreachable_becomes_zns_and_is_delivered(
    engine: AsyncEngine, clock: MutableClock, channels: dict[str, Channel], zalo: ZaloFakeState
) -> None:
    zalo.oa_unreachable[UID] = -213
    await add_officer(engine, "anh.nv", zalo_user_id=UID, phone=PHONE)
    row_id = await add_row(engine, recipient="anh.nv", channel="zalo_oa", address=UID)
    fallbacks_before = sample("doisoat_notifications_fallback_total")
    subject = dispatcher(engine, clock, channels)

    assert await subject.dispatch_once() == 1
    row = (await outbox_rows(engine))[row_id]
    assert (row.status, row.channel, row.address, row.attempts) == (
        "pending",
        "zalo_zns",
        PHONE,
        0,
    )
    assert "-213" in row.last_error
    assert sample("doisoat_notifications_fallback_total") == fallbacks_before + 1

    assert await subject.dispatch_once() == 1
    row = (await outbox_rows(engine))[row_id]
    assert row.status == "sent"
    [zns] = zalo.zns_messages
    assert zns["phone"] == PHONE_84 and zns["tracking_id"] == str(row_id)
    assert row.provider_id == zns["msg_id"]
    assert zalo.oa_messages == []


async def test_oa_unreachable_without_phone_is_dead(
    engine: AsyncEngine, clock: MutableClock, channels: dict[str, Channel], zalo: ZaloFakeState
) -> None:
    zalo.oa_unreachable[UID] = -230
    await add_officer(engine, "anh.nv", zalo_user_id=UID)
    row_id = await add_row(engine, recipient="anh.nv", channel="zalo_oa", address=UID)

    assert await dispatcher(engine, clock, channels).dispatch_once() == 1

    row = (await outbox_rows(engine))[row_id]
    assert row.status == "dead"
    assert row.last_error.startswith("không liên lạc được qua Zalo")


async def test_phone_without_zalo_is_dead_while_email_is_sent(
    engine: AsyncEngine,
    clock: MutableClock,
    channels: dict[str, Channel],
    zalo: ZaloFakeState,
    smtp_server: FakeSmtpServer,
) -> None:
    zalo.no_zalo_phones.add(PHONE_84)
    await add_officer(engine, "anh.nv", email="anh.nv@tinh.gov.vn", phone=PHONE)
    email_id, zns_id = await add_rows(
        engine,
        [
            {"recipient": "anh.nv", "channel": "email", "address": "anh.nv@tinh.gov.vn"},
            {"recipient": "anh.nv", "channel": "zalo_zns", "address": PHONE},
        ],
    )
    dead_before = sample("doisoat_notifications_dead_total", channel="zalo_zns")

    assert await dispatcher(engine, clock, channels).dispatch_once() == 2

    rows = await outbox_rows(engine)
    assert rows[email_id].status == "sent"
    assert len(smtp_server.handler.messages()) == 1
    assert rows[zns_id].status == "dead"
    assert rows[zns_id].last_error.startswith("no Zalo account: email only")
    assert "-118" in rows[zns_id].last_error
    assert sample("doisoat_notifications_dead_total", channel="zalo_zns") == dead_before + 1


def _next_vn_midnight(moment: datetime) -> datetime:
    local = moment.astimezone(VN_TZ)
    return (
        local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    ).astimezone(moment.tzinfo)


@pytest.mark.parametrize("remaining", [0, 1])
async def test_zns_quota_exhausted_defers_until_the_reset(
    engine: AsyncEngine,
    clock: MutableClock,
    channels: dict[str, Channel],
    zalo: ZaloFakeState,
    remaining: int,
) -> None:
    """0 left: Zalo refuses (-144); 1 left: Zalo says 0 remain after the first message."""
    zalo.zns_remaining = remaining
    ids = await add_rows(
        engine,
        [
            {"recipient": f"canbo{n}", "channel": "zalo_zns", "address": f"8491234567{n}"}
            for n in range(3)
        ],
    )
    reset = _next_vn_midnight(TEST_NOW)
    subject = dispatcher(engine, clock, channels)

    assert await subject.dispatch_once() == 3

    rows = await outbox_rows(engine)
    assert len(zalo.zns_messages) == remaining
    waiting = [rows[row_id] for row_id in ids if rows[row_id].status == "pending"]
    assert len(waiting) == 3 - remaining
    for row in waiting:
        assert (row.attempts, row.not_before) == (0, reset)  # no attempt counted
    clock.now = reset - timedelta(seconds=1)
    assert await subject.dispatch_once() == 0

    zalo.zns_remaining = 500  # a new day at Zalo
    clock.now = reset
    assert await subject.dispatch_once() == 3 - remaining
    rows = await outbox_rows(engine)
    assert all(rows[row_id].status == "sent" for row_id in ids)
    assert sorted(message["phone"] for message in zalo.zns_messages) == [
        f"8491234567{n}" for n in range(3)
    ]


async def test_oa_unreachable_without_zns_configured_is_dead(
    engine: AsyncEngine, clock: MutableClock, channels: dict[str, Channel], zalo: ZaloFakeState
) -> None:
    zalo.oa_unreachable[UID] = -213
    await add_officer(engine, "anh.nv", zalo_user_id=UID, phone=PHONE)
    row_id = await add_row(engine, recipient="anh.nv", channel="zalo_oa", address=UID)
    without_zns = {name: channel for name, channel in channels.items() if name != "zalo_zns"}

    assert await dispatcher(engine, clock, without_zns).dispatch_once() == 1

    row = (await outbox_rows(engine))[row_id]
    assert row.status == "dead" and "ZNS channel not configured" in row.last_error
