"""Email channel: one reused SMTP connection, RFC 2047-encoded Vietnamese headers.

Opening an SMTP session (TCP, EHLO, maybe STARTTLS and AUTH) costs far more than sending one
message, so the channel keeps one connection open across sends and reopens it when the server
dropped it. SMTP is a sequential protocol: a lock serialises the conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import time
from email import policy
from email.errors import HeaderParseError, MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from services.alerts.channels.base import Channel, Message, SendOutcome, SendResult, redact
from shared.clock import VN_TZ, Clock, system_clock

# A connection idle longer than this is probed with NOOP before use: servers close idle
# sessions (often after 60-300 s) and a half-open socket would otherwise fail the next send.
IDLE_PROBE_SECONDS = 30.0
_MSGID_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class EmailSettings(BaseModel):
    """SMTP relay settings (``DOISOAT_SMTP_*``)."""

    model_config = ConfigDict(frozen=True)

    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)  # default in AlertsSettings (DOISOAT_SMTP_PORT)
    sender: str  # "Đối soát TTHC <doisoat@example.gov.vn>" or a bare address
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False
    timeout: float = Field(default=10, gt=0)
    ca_file: str | None = None  # extra trust anchor for STARTTLS to a relay with a private CA
    local_hostname: str | None = None  # EHLO name; None = the host's FQDN

    @field_validator("sender")
    @classmethod
    def _sender_is_an_address(cls, value: str) -> str:
        _, addr = parseaddr(value)
        if "@" not in addr:
            raise ValueError(f"sender {value!r} holds no email address")
        return value


def message_id_for(notification_id: str) -> str:
    """``<{notification_id}@doisoat>``, hashed when the id is not safe inside a Message-ID."""
    local = notification_id
    if not _MSGID_SAFE.fullmatch(local) or ".." in local or local.endswith("."):
        local = hashlib.sha256(notification_id.encode("utf-8")).hexdigest()[:40]
    return f"<{local}@doisoat>"


class EmailChannel(Channel):
    """Sends alerts by SMTP over one long-lived connection."""

    name = "email"

    def __init__(self, settings: EmailSettings, *, clock: Clock = system_clock) -> None:
        self._settings = settings
        self._clock = clock
        display_name, addr = parseaddr(settings.sender)
        self._from = Address(display_name=display_name, addr_spec=addr)
        self._envelope_from = addr
        self._smtp: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()
        self._last_used = 0.0
        self.connections_opened = 0  # diagnostics: how often we had to (re)connect

    def build_message(self, message: Message) -> EmailMessage:
        """The MIME message: plain text and, when given, HTML as multipart/alternative.

        ``policy.SMTP`` has ``utf8=False``: non-ASCII subjects and display names are encoded
        per RFC 2047, which every relay accepts (SMTPUTF8 is not universally supported).
        """
        recipient = message.recipient
        if not recipient.email:
            raise ValueError("recipient has no email address")
        mail = EmailMessage(policy=policy.SMTP)
        mail["Subject"] = message.subject
        mail["From"] = self._from
        mail["To"] = Address(display_name=recipient.full_name, addr_spec=recipient.email)
        mail["Date"] = format_datetime(self._clock().astimezone(VN_TZ))
        mail["Message-ID"] = message_id_for(message.notification_id)
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
        mail.set_content(message.text)
        if message.html is not None:
            mail.add_alternative(message.html, subtype="html")
        return mail

    async def _send(self, message: Message) -> SendResult:
        try:
            mail = self.build_message(message)
            rcpt = str(mail["To"].addresses[0].addr_spec)
            rcpt.encode("ascii")  # SMTPUTF8 is off: a non-ASCII mailbox cannot be sent
        except (ValueError, IndexError, HeaderParseError, MessageError) as exc:
            return SendResult(
                SendOutcome.FAILED, f"invalid message or address: {type(exc).__name__}"
            )
        message_id = str(mail["Message-ID"])
        async with self._lock:
            try:
                smtp = await self._connection()
                _, response = await smtp.send_message(
                    mail, sender=self._envelope_from, recipients=[rcpt]
                )
            except aiosmtplib.SMTPRecipientsRefused as exc:
                # sendmail already sent RSET: the connection stays usable.
                refused = exc.recipients[0]
                outcome = SendOutcome.RETRY if 400 <= refused.code < 500 else SendOutcome.FAILED
                return SendResult(outcome, _smtp_detail("recipient refused", refused))
            except aiosmtplib.SMTPDataError as exc:
                outcome = SendOutcome.RETRY if exc.code < 500 else SendOutcome.FAILED
                return SendResult(outcome, _smtp_detail("message refused", exc))
            except aiosmtplib.SMTPResponseException as exc:
                # Sender refused, AUTH or EHLO trouble, 421 closing: the relay or our settings
                # are at fault, not this message. Retrying gives an operator time to fix them.
                self._drop()
                return SendResult(SendOutcome.RETRY, _smtp_detail("relay refused", exc))
            except (aiosmtplib.SMTPException, OSError) as exc:
                self._drop()
                return SendResult(
                    SendOutcome.RETRY, f"smtp unreachable: {type(exc).__name__}: {exc}"
                )
            except BaseException:
                self._drop()  # cancelled mid-conversation: the session state is unknown
                raise
            self._last_used = time.monotonic()
        return SendResult(SendOutcome.SENT, redact(response)[:200], provider_id=message_id)

    async def _connection(self) -> aiosmtplib.SMTP:
        """The open session, probed when idle, else a new one (called under the lock)."""
        smtp = self._smtp
        if smtp is not None and smtp.is_connected:
            if time.monotonic() - self._last_used < IDLE_PROBE_SECONDS:
                return smtp
            try:
                await smtp.noop()
                return smtp
            except (aiosmtplib.SMTPException, OSError):
                pass
        self._drop()
        settings = self._settings
        smtp = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            timeout=settings.timeout,
            start_tls=settings.starttls,  # never silently upgrade or downgrade
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
            cert_bundle=settings.ca_file,
            local_hostname=settings.local_hostname,
        )
        await smtp.connect()
        self._smtp = smtp
        self.connections_opened += 1
        return smtp

    def _drop(self) -> None:
        """Forget the current session; the next send opens a fresh one."""
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    async def aclose(self) -> None:
        """Say QUIT politely when the session is alive, then close it."""
        async with self._lock:
            smtp = self._smtp
            if smtp is not None and smtp.is_connected:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                    await smtp.quit(timeout=min(self._settings.timeout, 2.0))
            self._drop()


def _smtp_detail(what: str, exc: aiosmtplib.SMTPResponseException) -> str:
    """``"<what>: <code> <server text>"`` without the addresses servers like to echo."""
    return f"{what}: {exc.code} {redact(exc.message)}"[:300]
