"""The email channel against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from services.alerts.channels import CHANNELS
from services.alerts.channels import email as email_module
from services.alerts.channels.base import SendOutcome
from services.alerts.channels.email import EmailChannel, EmailSettings, message_id_for
from tests.fakes.smtp_server import FakeSmtpServer, self_signed_tls
from tests.services.alerts.conftest import HTML, SENDER, SUBJECT, TEXT, MakeMessage


async def test_delivers_one_vietnamese_message_with_both_bodies(
    email_channel: EmailChannel, smtp_server: FakeSmtpServer, make_message: MakeMessage
) -> None:
    result = await email_channel.send(make_message("n000123"))

    assert result.outcome is SendOutcome.SENT
    assert result.provider_id == "<n000123@doisoat>"
    [mail] = smtp_server.handler.messages()
    assert mail.mail_from == "doisoat@tinh.gov.vn"
    assert mail.rcpt_tos == ["anh.nv@tinh.gov.vn"]
    message = mail.message
    assert message["Subject"] == SUBJECT
    assert message["Message-ID"] == "<n000123@doisoat>"
    assert message["From"].addresses[0].display_name == "Hệ thống đối soát TTHC"
    assert message["To"].addresses[0].display_name == "Nguyễn Văn Ánh"
    assert message["Date"] is not None
    assert message.get_content_type() == "multipart/alternative"
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n") == TEXT
    assert html.get_content().strip() == HTML


async def test_headers_are_rfc2047_encoded_ascii(
    email_channel: EmailChannel, smtp_server: FakeSmtpServer, make_message: MakeMessage
) -> None:
    await email_channel.send(make_message())

    [mail] = smtp_server.handler.messages()
    headers = mail.raw.split(b"\r\n\r\n", 1)[0]
    headers.decode("ascii")  # SMTPUTF8 off: nothing but ASCII on the wire
    assert b"=?utf-8?" in headers.lower()


async def test_plain_text_only_when_there_is_no_html(
    email_channel: EmailChannel, smtp_server: FakeSmtpServer, make_message: MakeMessage
) -> None:
    await email_channel.send(make_message(html=None))

    [mail] = smtp_server.handler.messages()
    assert mail.message.get_content_type() == "text/plain"
    assert mail.message.get_content().replace("\r\n", "\n") == TEXT


def test_message_id_derives_from_the_notification_id() -> None:
    assert message_id_for("42") == "<42@doisoat>"
    assert message_id_for("8f14e45f-ceea-467f-a9c9-4b1c2d3e4f50") == (
        "<8f14e45f-ceea-467f-a9c9-4b1c2d3e4f50@doisoat>"
    )
    odd = message_id_for("outbox/7 <x>")
    assert odd == message_id_for("outbox/7 <x>")  # a retry carries the same id
    assert odd != message_id_for("outbox/8 <x>")
    assert odd.startswith("<") and odd.endswith("@doisoat>") and " " not in odd


async def test_smtp_down_is_retry_then_back_sends_exactly_once(
    email_channel: EmailChannel, smtp_server: FakeSmtpServer, make_message: MakeMessage
) -> None:
    smtp_server.stop()
    down = await email_channel.send(make_message("n1"))
    assert down.outcome is SendOutcome.RETRY
    assert "anh.nv@" not in down.detail

    smtp_server.start()
    back = await email_channel.send(make_message("n1"))

    assert back.outcome is SendOutcome.SENT
    assert [m.message["Message-ID"] for m in smtp_server.handler.messages()] == ["<n1@doisoat>"]


async def test_reconnects_when_the_server_dropped_the_session(
    email_channel: EmailChannel, smtp_server: FakeSmtpServer, make_message: MakeMessage
) -> None:
    assert (await email_channel.send(make_message("n1"))).outcome is SendOutcome.SENT
    smtp_server.stop()
    smtp_server.start()
    await asyncio.sleep(0.05)  # let the client's loop notice the closed socket

    assert (await email_channel.send(make_message("n2"))).outcome is SendOutcome.SENT
    assert email_channel.connections_opened == 2
    assert len(smtp_server.handler.messages()) == 2


async def test_reuses_one_connection_for_many_messages(
    email_channel: EmailChannel, smtp_server: FakeSmtpServer, make_message: MakeMessage
) -> None:
    messages = [make_message(f"n{i}") for i in range(300)]

    # What reuse means is one session for all 300 (asserted below), not a speed on this
    # machine: the bound only turns a stalled session into a failure instead of a hang.
    async with asyncio.timeout(120):
        results = [await email_channel.send(message) for message in messages]

    assert {r.outcome for r in results} == {SendOutcome.SENT}
    received = smtp_server.handler.messages()
    assert len(received) == 300
    assert len({m.peer for m in received}) == 1
    assert email_channel.connections_opened == 1


async def test_concurrent_sends_share_the_connection(
    email_channel: EmailChannel, smtp_server: FakeSmtpServer, make_message: MakeMessage
) -> None:
    results = await asyncio.gather(*(email_channel.send(make_message(f"c{i}")) for i in range(40)))

    assert {r.outcome for r in results} == {SendOutcome.SENT}
    ids = sorted(m.message["Message-ID"] for m in smtp_server.handler.messages())
    assert ids == sorted(f"<c{i}@doisoat>" for i in range(40))
    assert email_channel.connections_opened == 1


async def test_server_too_slow_is_retry_and_the_next_send_reconnects(
    email_settings: EmailSettings, smtp_server: FakeSmtpServer, make_message: MakeMessage
) -> None:
    channel = EmailChannel(email_settings.model_copy(update={"timeout": 0.3}))
    smtp_server.handler.stall_seconds = 1.0
    try:
        slow = await channel.send(make_message("n1"))
        smtp_server.handler.stall_seconds = 0.0
        fast = await channel.send(make_message("n2"))
    finally:
        await channel.aclose()

    assert slow.outcome is SendOutcome.RETRY and "Timeout" in slow.detail
    assert fast.outcome is SendOutcome.SENT
    assert channel.connections_opened == 2  # the timed-out session was not reused


async def test_idle_session_is_probed_and_kept(
    email_channel: EmailChannel,
    smtp_server: FakeSmtpServer,
    make_message: MakeMessage,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(email_module, "IDLE_PROBE_SECONDS", 0.0)  # every send probes (NOOP)

    for i in range(3):
        assert (await email_channel.send(make_message(f"n{i}"))).outcome is SendOutcome.SENT
    assert email_channel.connections_opened == 1
    assert len(smtp_server.handler.messages()) == 3


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        ("550 5.1.1 <anh.nv@tinh.gov.vn>: no such user", SendOutcome.FAILED),
        ("450 4.2.1 busy", SendOutcome.RETRY),
    ],
)
async def test_refused_recipient(
    email_channel: EmailChannel,
    smtp_server: FakeSmtpServer,
    make_message: MakeMessage,
    reply: str,
    outcome: SendOutcome,
) -> None:
    smtp_server.handler.refuse["anh.nv@tinh.gov.vn"] = reply

    result = await email_channel.send(make_message())

    assert result.outcome is outcome
    assert reply[:3] in result.detail
    assert "anh.nv@" not in result.detail  # the address the server echoed is masked
    # The session survives a refused recipient (RSET) and serves the next message.
    assert (await email_channel.send(make_message(email="other@tinh.gov.vn"))).outcome is (
        SendOutcome.SENT
    )
    assert email_channel.connections_opened == 1


async def test_no_or_invalid_address_fails_without_contacting_the_server(
    email_channel: EmailChannel, smtp_server: FakeSmtpServer, make_message: MakeMessage
) -> None:
    assert (await email_channel.send(make_message(email=None))).outcome is SendOutcome.FAILED
    assert (await email_channel.send(make_message(email="not an address"))).outcome is (
        SendOutcome.FAILED
    )
    assert email_channel.connections_opened == 0
    assert smtp_server.handler.messages() == []


async def test_records_metrics_and_logs_no_personal_data(
    email_channel: EmailChannel, make_message: MakeMessage, caplog: pytest.LogCaptureFixture
) -> None:
    def sent() -> float:
        labels = {"channel": "email", "outcome": "sent"}
        return REGISTRY.get_sample_value("doisoat_notifications_attempts_total", labels) or 0.0

    before = sent()
    with caplog.at_level(logging.INFO, logger="doisoat.alerts.channels"):
        await email_channel.send(make_message("n77"))

    assert sent() == before + 1
    [record] = caplog.records
    line = record.getMessage()
    assert "n77" in line and "outcome=sent" in line
    for private in ("anh.nv@tinh.gov.vn", "Nguyễn Văn Ánh", "Hồ sơ", SUBJECT):
        assert private not in line


async def test_starttls_and_auth(tmp_path: Path, make_message: MakeMessage) -> None:
    tls = self_signed_tls(tmp_path)
    if tls is None:
        pytest.skip("openssl is not installed")
    context, cert = tls
    server = FakeSmtpServer(tls_context=context, credentials=("doisoat", "mat-khau-dung"))
    server.start()
    try:
        settings = {
            "host": server.host,
            "port": server.port,
            "sender": SENDER,
            "starttls": True,
            "ca_file": str(cert),
            "username": "doisoat",
            "timeout": 2,
            "local_hostname": "doisoat.test",
        }
        good = EmailChannel(EmailSettings(**settings, password="mat-khau-dung"))
        bad = EmailChannel(EmailSettings(**settings, password="sai"))
        try:
            assert (await good.send(make_message("t1"))).outcome is SendOutcome.SENT
            refused = await bad.send(make_message("t2"))
            assert refused.outcome is SendOutcome.RETRY  # a settings problem, not the message's
            assert "535" in refused.detail
        finally:
            await good.aclose()
            await bad.aclose()
        assert [m.message["Message-ID"] for m in server.handler.messages()] == ["<t1@doisoat>"]
    finally:
        server.stop()


def test_registry_names_the_email_channel() -> None:
    assert CHANNELS["email"] is EmailChannel
    assert EmailChannel.name == "email"
