"""The dispatcher against a real SMTP server on loopback, on PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.alerts.channels.base import Channel, Message, SendResult
from services.alerts.channels.email import EmailChannel, EmailSettings
from services.alerts.dispatcher import Dispatcher
from services.alerts.officers import recipient_of
from tests.conftest import TEST_NOW
from tests.fakes.smtp_server import FakeSmtpServer
from tests.services.alerts.dispatch.conftest import (
    MutableClock,
    RecordingRenderer,
    add_officer,
    add_row,
    add_rows,
    message_row_id,
    outbox_rows,
    sample,
)
from tests.services.alerts.dispatch.plain_render import render
from tests.services.alerts.dispatch.tuning import dispatch_settings


@pytest.fixture
async def channel(email_settings: EmailSettings) -> AsyncIterator[EmailChannel]:
    built = EmailChannel(email_settings)
    yield built
    await built.aclose()


def dispatcher(
    engine: AsyncEngine,
    clock: MutableClock,
    channels: dict[str, Channel],
    renderer: object = render,
    **settings: object,
) -> Dispatcher:
    return Dispatcher(
        engine=engine,
        clock=clock,
        channels=channels,
        renderer=renderer,  # type: ignore[arg-type]
        settings=dispatch_settings(**settings),
        rng=random.Random(7),
    )


async def test_one_email_per_row(
    engine: AsyncEngine,
    clock: MutableClock,
    channel: EmailChannel,
    smtp_server: FakeSmtpServer,
) -> None:
    for n in range(3):
        await add_officer(engine, f"canbo{n}", email=f"canbo{n}@tinh.gov.vn")
    ids = await add_rows(
        engine,
        [
            {"recipient": f"canbo{n}", "channel": "email", "address": f"canbo{n}@tinh.gov.vn"}
            for n in range(3)
        ],
    )
    sent_before = sample("doisoat_notifications_sent_total", channel="email")
    delivered_before = sample("doisoat_notification_delivery_seconds_count", channel="email")
    subject = dispatcher(engine, clock, {"email": channel})

    assert await subject.dispatch_once() == 3
    assert await subject.dispatch_once() == 0

    mails = smtp_server.handler.messages()
    assert sorted(mail.rcpt_tos[0] for mail in mails) == [f"canbo{n}@tinh.gov.vn" for n in range(3)]
    assert sorted(message_row_id(mail) for mail in mails) == sorted(map(str, ids))
    rows = await outbox_rows(engine)
    for row_id in ids:
        row = rows[row_id]
        assert (row.status, row.sent_at, row.group_id) == ("sent", TEST_NOW, row_id)
        assert row.provider_id == f"<{row_id}@doisoat>"
        assert row.attempts == 0 and row.last_error is None
    assert sample("doisoat_notifications_sent_total", channel="email") == sent_before + 3
    delivered = sample("doisoat_notification_delivery_seconds_count", channel="email")
    assert delivered == delivered_before + 3


async def test_rows_within_group_wait_share_one_email(
    engine: AsyncEngine,
    clock: MutableClock,
    channel: EmailChannel,
    smtp_server: FakeSmtpServer,
    renderer: RecordingRenderer,
) -> None:
    await add_officer(engine, "anh.nv", email="anh.nv@tinh.gov.vn")
    row = {"recipient": "anh.nv", "channel": "email", "address": "anh.nv@tinh.gov.vn"}
    first = await add_row(engine, **row, content={"code": "HS-1"})
    soon = await add_row(
        engine, **row, content={"code": "HS-2"}, not_before=TEST_NOW + timedelta(seconds=20)
    )
    later = await add_row(
        engine, **row, content={"code": "HS-3"}, not_before=TEST_NOW + timedelta(seconds=31)
    )
    other = await add_row(engine, **row, purpose="escalation", content={"code": "HS-4"})
    subject = dispatcher(engine, clock, {"email": channel}, renderer)

    assert await subject.dispatch_once() == 3

    assert sorted(renderer.calls) == [
        ("escalation", ["HS-4"], "anh.nv", "email"),
        ("opened", ["HS-1", "HS-2"], "anh.nv", "email"),
    ]
    mails = smtp_server.handler.messages()
    assert len(mails) == 2
    [grouped] = [mail for mail in mails if "HS-2" in mail.message.get_content()]
    assert "HS-1" in grouped.message.get_content()
    rows = await outbox_rows(engine)
    assert rows[first].group_id == rows[soon].group_id == first
    assert rows[other].status == "sent" and rows[other].group_id == other
    assert rows[later].status == "pending"

    clock.advance(seconds=31)
    assert await subject.dispatch_once() == 1
    assert renderer.calls[-1] == ("opened", ["HS-3"], "anh.nv", "email")
    assert len(smtp_server.handler.messages()) == 3


async def test_smtp_down_then_back_delivers_once(
    engine: AsyncEngine,
    clock: MutableClock,
    channel: EmailChannel,
    smtp_server: FakeSmtpServer,
) -> None:
    row_id = await add_row(
        engine, recipient="anh.nv", channel="email", address="anh.nv@tinh.gov.vn"
    )
    retries_before = sample("doisoat_notifications_failed_total", channel="email", outcome="retry")
    subject = dispatcher(engine, clock, {"email": channel})
    smtp_server.stop()

    assert await subject.dispatch_once() == 1

    row = (await outbox_rows(engine))[row_id]
    assert (row.status, row.attempts) == ("pending", 1)
    assert TEST_NOW < row.not_before <= TEST_NOW + timedelta(seconds=5)  # backoff, 1st retry
    assert row.last_error.startswith("smtp unreachable")
    assert (
        sample("doisoat_notifications_failed_total", channel="email", outcome="retry")
        == retries_before + 1
    )
    assert await subject.dispatch_once() == 0  # not due before its backoff ends

    smtp_server.start()
    clock.now = row.not_before
    assert await subject.dispatch_once() == 1
    assert await subject.dispatch_once() == 0

    [mail] = smtp_server.handler.messages()
    assert message_row_id(mail) == str(row_id)
    row = (await outbox_rows(engine))[row_id]
    assert (row.status, row.attempts, row.sent_at) == ("sent", 1, row.not_before)


async def test_failing_channel_rests_for_the_rest_of_the_batch(
    engine: AsyncEngine,
    clock: MutableClock,
    channel: EmailChannel,
    smtp_server: FakeSmtpServer,
) -> None:
    """After 3 failures in a row the other groups are put off without losing an attempt."""
    ids = await add_rows(
        engine,
        [
            {"recipient": f"canbo{n}", "channel": "email", "address": f"canbo{n}@tinh.gov.vn"}
            for n in range(6)
        ],
    )
    smtp_server.stop()

    await dispatcher(engine, clock, {"email": channel}).dispatch_once()

    rows = await outbox_rows(engine)
    attempts = sorted(rows[row_id].attempts for row_id in ids)
    assert attempts == [0, 0, 0, 1, 1, 1]
    for row_id in ids:
        assert rows[row_id].status == "pending" and rows[row_id].not_before > TEST_NOW
    rested = [rows[row_id] for row_id in ids if rows[row_id].attempts == 0]
    assert all(row.last_error.startswith("not attempted, channel failing") for row in rested)


async def test_max_attempts_then_dead_and_counted(
    engine: AsyncEngine,
    clock: MutableClock,
    channel: EmailChannel,
    smtp_server: FakeSmtpServer,
) -> None:
    row_id = await add_row(
        engine, recipient="anh.nv", channel="email", address="anh.nv@tinh.gov.vn"
    )
    dead_before = sample("doisoat_notifications_dead_total", channel="email")
    failed_dead_before = sample(
        "doisoat_notifications_failed_total", channel="email", outcome="dead"
    )
    subject = dispatcher(engine, clock, {"email": channel}, max_attempts=3)
    smtp_server.stop()

    for attempt in (1, 2):
        assert await subject.dispatch_once() == 1
        row = (await outbox_rows(engine))[row_id]
        assert (row.status, row.attempts) == ("pending", attempt)
        clock.now = row.not_before
    assert await subject.dispatch_once() == 1

    row = (await outbox_rows(engine))[row_id]
    assert (row.status, row.attempts) == ("dead", 3)
    assert row.last_error.startswith("gave up after 3 attempts: smtp unreachable")
    assert sample("doisoat_notifications_dead_total", channel="email") == dead_before + 1
    assert (
        sample("doisoat_notifications_failed_total", channel="email", outcome="dead")
        == failed_dead_before + 1
    )
    clock.advance(days=1)
    assert await subject.dispatch_once() == 0


async def test_permanent_refusal_is_dead_at_once(
    engine: AsyncEngine,
    clock: MutableClock,
    channel: EmailChannel,
    smtp_server: FakeSmtpServer,
) -> None:
    smtp_server.handler.refuse["nobody@tinh.gov.vn"] = "550 5.1.1 No such user"
    gone = await add_row(engine, recipient="gone", channel="email", address="nobody@tinh.gov.vn")
    fine = await add_row(engine, recipient="fine", channel="email", address="fine@tinh.gov.vn")

    assert await dispatcher(engine, clock, {"email": channel}).dispatch_once() == 2

    rows = await outbox_rows(engine)
    assert rows[gone].status == "dead" and "550" in rows[gone].last_error
    assert "nobody@" not in rows[gone].last_error  # addresses are redacted
    assert rows[fine].status == "sent"


async def test_row_of_a_channel_not_configured_is_dead(
    engine: AsyncEngine, clock: MutableClock, channel: EmailChannel
) -> None:
    row_id = await add_row(engine, recipient="anh.nv", channel="zalo_oa", address="4512903317")

    assert await dispatcher(engine, clock, {"email": channel}).dispatch_once() == 1

    row = (await outbox_rows(engine))[row_id]
    assert (row.status, row.last_error) == ("dead", "channel not configured")


class _Exploding(Channel):
    """A channel whose send blows up the whole pass (a bug, a cancellation)."""

    name = "email"

    async def send(self, message: Message) -> SendResult:
        raise RuntimeError("boom")

    async def _send(self, message: Message) -> SendResult:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


async def test_pass_dying_mid_send_leaves_rows_pending(
    engine: AsyncEngine,
    clock: MutableClock,
    channel: EmailChannel,
    smtp_server: FakeSmtpServer,
) -> None:
    """PostgreSQL rolls the claim back; SQLite's lease hides the rows until it ends."""
    row_id = await add_row(
        engine, recipient="anh.nv", channel="email", address="anh.nv@tinh.gov.vn"
    )
    with pytest.raises(RuntimeError):
        await dispatcher(engine, clock, {"email": _Exploding()}).dispatch_once()
    row = (await outbox_rows(engine))[row_id]
    assert (row.status, row.attempts) == ("pending", 0)

    subject = dispatcher(engine, clock, {"email": channel}, lease=timedelta(minutes=5))
    if engine.dialect.name == "sqlite":
        assert row.not_before == TEST_NOW + timedelta(minutes=5)
        assert await subject.dispatch_once() == 0
        clock.advance(minutes=5)
    assert await subject.dispatch_once() == 1
    assert len(smtp_server.handler.messages()) == 1


async def test_renderer_failure_is_retried(
    engine: AsyncEngine, clock: MutableClock, channel: EmailChannel
) -> None:
    def broken(*args: object) -> Message:
        raise KeyError("code")

    row_id = await add_row(
        engine, recipient="anh.nv", channel="email", address="anh.nv@tinh.gov.vn"
    )
    assert await dispatcher(engine, clock, {"email": channel}, broken).dispatch_once() == 1
    row = (await outbox_rows(engine))[row_id]
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error.startswith("render failed: KeyError")


async def test_gauges_read_the_outbox(
    engine: AsyncEngine, clock: MutableClock, channel: EmailChannel
) -> None:
    await add_rows(
        engine,
        [
            {
                "recipient": "a",
                "channel": "email",
                "address": "a@tinh.gov.vn",
                "not_before": TEST_NOW - timedelta(minutes=10),
            },
            {
                "recipient": "b",
                "channel": "email",
                "address": "b@tinh.gov.vn",
                "not_before": TEST_NOW + timedelta(hours=8),
            },  # quiet hours: not late
        ],
    )
    subject = dispatcher(engine, clock, {"email": channel})

    await subject.refresh_gauges()

    assert sample("doisoat_outbox_pending") == 2
    assert sample("doisoat_outbox_oldest_pending_age_seconds") == 600
    await subject.dispatch_once()
    await subject.refresh_gauges()
    assert sample("doisoat_outbox_pending") == 1
    assert sample("doisoat_outbox_oldest_pending_age_seconds") == 0


async def test_recipient_of_reads_the_directory(engine: AsyncEngine) -> None:
    await add_officer(engine, "anh.nv", email="anh.nv@tinh.gov.vn", phone="84912345678")
    async with engine.connect() as connection:
        officer = await recipient_of(connection, "anh.nv")
        assert await recipient_of(connection, "nobody") is None
    assert officer is not None
    assert (officer.email, officer.phone, officer.zalo_user_id) == (
        "anh.nv@tinh.gov.vn",
        "84912345678",
        None,
    )


async def test_run_sends_what_becomes_due_and_stops(
    engine: AsyncEngine,
    clock: MutableClock,
    channel: EmailChannel,
    smtp_server: FakeSmtpServer,
) -> None:
    subject = dispatcher(
        engine, clock, {"email": channel}, poll_interval=timedelta(milliseconds=20)
    )
    task = asyncio.create_task(subject.run())
    try:
        row_id = await add_row(
            engine, recipient="anh.nv", channel="email", address="anh.nv@tinh.gov.vn"
        )
        subject.wake()
        for _ in range(250):
            if smtp_server.handler.messages():
                break
            await asyncio.sleep(0.02)
        subject.stop()
        await asyncio.wait_for(task, timeout=5)
    finally:
        task.cancel()
    assert [message_row_id(mail) for mail in smtp_server.handler.messages()] == [str(row_id)]
    assert (await outbox_rows(engine))[row_id].status == "sent"
