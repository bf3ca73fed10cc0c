"""Fixtures for the notification channels: a real SMTP server and a Zalo-speaking HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from services.alerts.channels.base import Message, Recipient
from services.alerts.channels.email import EmailChannel, EmailSettings
from services.alerts.channels.zalo import (
    InMemoryTokenStore,
    ZaloApi,
    ZaloOAChannel,
    ZaloZNSChannel,
)
from services.alerts.channels.zalo_settings import ZaloSettings
from tests.fakes.smtp_server import FakeSmtpServer
from tests.fakes.zalo_server import FakeZaloServer, ZaloFakeState

SUBJECT = "[Đối soát] Hồ sơ 000.00.12.H08-241106-0001 đã trả kết quả nhưng hệ thống vẫn mở"
TEXT = (
    "Kính gửi ông Nguyễn Văn Ánh,\n\n"
    "Hồ sơ 000.00.12.H08-241106-0001 (Cấp giấy chứng nhận quyền sử dụng đất) "
    "đã được bộ phận một cửa trả kết quả lúc 09:15 ngày 06/11/2024, "
    "nhưng trên hệ thống vẫn ở trạng thái Đang xử lý.\n"
    "Đề nghị cập nhật trạng thái Đã trả kết quả trong ngày.\n"
)
HTML = "<p>Kính gửi ông <b>Nguyễn Văn Ánh</b>,</p><p>Hồ sơ 000.00.12.H08-241106-0001 …</p>"
TEMPLATE_DATA = {
    "ma_ho_so": "000.00.12.H08-241106-0001",
    "ten_thu_tuc": "Cấp giấy chứng nhận quyền sử dụng đất",
    "don_vi": "Văn phòng đăng ký đất đai",
    "van_de": "Đã trả kết quả nhưng hệ thống vẫn mở",
    "thoi_diem": "06/11/2024 09:15",
}
SENDER = "Hệ thống đối soát TTHC <doisoat@tinh.gov.vn>"
TEMPLATE_ID = "401234"

MakeMessage = Callable[..., Message]


@pytest.fixture
def make_message() -> MakeMessage:
    """Build a realistic Vietnamese alert; keyword overrides for the recipient and the id."""

    def build(
        notification_id: str = "n000123",
        *,
        email: str | None = "anh.nv@tinh.gov.vn",
        zalo_user_id: str | None = "4512903317480012345",
        phone: str | None = "0912345678",
        text: str = TEXT,
        html: str | None = HTML,
    ) -> Message:
        recipient = Recipient(
            account="anh.nv",
            full_name="Nguyễn Văn Ánh",
            email=email,
            zalo_user_id=zalo_user_id,
            phone=phone,
        )
        return Message(
            notification_id=notification_id,
            recipient=recipient,
            subject=SUBJECT,
            text=text,
            html=html,
            template_data=dict(TEMPLATE_DATA),
        )

    return build


# --- email ---


@pytest.fixture
def smtp_server() -> Iterator[FakeSmtpServer]:
    server = FakeSmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def email_settings(smtp_server: FakeSmtpServer) -> EmailSettings:
    return EmailSettings(
        host=smtp_server.host,
        port=smtp_server.port,
        sender=SENDER,
        timeout=2,
        local_hostname="doisoat.test",
    )


@pytest.fixture
async def email_channel(email_settings: EmailSettings) -> AsyncIterator[EmailChannel]:
    channel = EmailChannel(email_settings)
    yield channel
    await channel.aclose()


# --- Zalo ---


@pytest.fixture(scope="session")
def zalo_server() -> Iterator[FakeZaloServer]:
    server = FakeZaloServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def zalo(zalo_server: FakeZaloServer) -> ZaloFakeState:
    """A fresh fake state per test: tokens, quotas and recorded messages start empty."""
    return zalo_server.reset()


@pytest.fixture
def zalo_settings(zalo_server: FakeZaloServer, zalo: ZaloFakeState) -> ZaloSettings:
    base = zalo_server.base_url
    return ZaloSettings(
        app_id=zalo.app_id,
        secret_key=zalo.secret_key,
        refresh_token=zalo.issue_refresh_token(),
        zns_template_id=TEMPLATE_ID,
        oa_api_base=base,
        zns_api_base=base,
        oauth_base=base,
        timeout=2,
    )


@pytest.fixture
def token_store() -> InMemoryTokenStore:
    return InMemoryTokenStore()


@pytest.fixture
async def zalo_api(
    zalo_settings: ZaloSettings, token_store: InMemoryTokenStore
) -> AsyncIterator[ZaloApi]:
    api = ZaloApi(zalo_settings, token_store)
    yield api
    await api.http.aclose()


@pytest.fixture
async def oa_channel(zalo_api: ZaloApi) -> AsyncIterator[ZaloOAChannel]:
    channel = ZaloOAChannel(zalo_api)
    yield channel
    await channel.aclose()


@pytest.fixture
async def zns_channel(zalo_api: ZaloApi) -> AsyncIterator[ZaloZNSChannel]:
    channel = ZaloZNSChannel(zalo_api)
    yield channel
    await channel.aclose()
