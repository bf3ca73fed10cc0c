"""Notification channels of the alerts service, by the name the outbox stores."""

from __future__ import annotations

from services.alerts.channels.base import (
    Channel,
    Message,
    Recipient,
    SendOutcome,
    SendResult,
    backoff_delay,
)
from services.alerts.channels.email import EmailChannel, EmailSettings
from services.alerts.channels.zalo import (
    InMemoryTokenStore,
    TokenState,
    TokenStore,
    ZaloApi,
    ZaloOAChannel,
    ZaloTokenManager,
    ZaloZNSChannel,
)
from services.alerts.channels.zalo_settings import ZaloSettings

CHANNELS: dict[str, type[Channel]] = {
    "email": EmailChannel,
    "zalo_oa": ZaloOAChannel,
    "zalo_zns": ZaloZNSChannel,
}

__all__ = [
    "CHANNELS",
    "Channel",
    "EmailChannel",
    "EmailSettings",
    "InMemoryTokenStore",
    "Message",
    "Recipient",
    "SendOutcome",
    "SendResult",
    "TokenState",
    "TokenStore",
    "ZaloApi",
    "ZaloOAChannel",
    "ZaloSettings",
    "ZaloTokenManager",
    "ZaloZNSChannel",
    "backoff_delay",
]
