"""Settings of the alerts service: channels, routing windows, quiet hours, the weekly digest.

:class:`AlertsSettings` is read from the environment; the dispatcher's :class:`DispatchSettings`
are derived from it (:attr:`AlertsSettings.dispatch`), so every setting has one default.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time, timedelta

from pydantic import Field, SecretStr, model_validator

from services.alerts.channels.email import EmailSettings
from services.alerts.channels.zalo_settings import ZaloSettings
from shared.config import BaseDoisoatSettings

MIN_MAX_BATCH_ROWS = 2000  # due rows plus the rows joining their messages, at least


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    """Tuning of the dispatcher, built from :class:`AlertsSettings` (``.dispatch``).

    The first five come from the environment and have their defaults there only; the rest are
    not configurable and have their one default here.
    """

    group_wait: timedelta
    batch_size: int  # due rows claimed per pass (so at most ~this many messages)
    max_batch_rows: int  # due rows plus the rows joining their messages (group wait)
    max_attempts: int
    poll_interval: timedelta
    max_group_rows: int = 50  # rows listed in one message at most
    backoff_base: timedelta = timedelta(seconds=5)
    backoff_cap: timedelta = timedelta(hours=1)
    zalo_concurrency: int = 4  # Zalo calls in flight at once (OA and ZNS together)
    channel_failure_threshold: int = 3  # consecutive retries before a channel rests this batch
    lease: timedelta = timedelta(minutes=5)  # SQLite only: how long claimed rows stay hidden

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_group_rows < 1 or self.zalo_concurrency < 1:
            raise ValueError("batch_size, max_group_rows and zalo_concurrency must be >= 1")
        if self.max_batch_rows < self.batch_size:
            raise ValueError("max_batch_rows must be >= batch_size")
        if self.max_attempts < 1 or self.channel_failure_threshold < 1:
            raise ValueError("max_attempts and channel_failure_threshold must be >= 1")
        if not timedelta(0) < self.backoff_base <= self.backoff_cap:
            raise ValueError("need 0 < backoff_base <= backoff_cap")
        if self.group_wait < timedelta(0) or self.lease <= timedelta(0):
            raise ValueError("group_wait must be >= 0 and lease > 0")


class AlertsSettings(BaseDoisoatSettings):
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_sender: str = "doisoat@localhost"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False

    zalo_app_id: str | None = None
    zalo_secret_key: SecretStr | None = None
    zalo_refresh_token: SecretStr | None = None
    zalo_zns_template_id: str | None = None
    zalo_oa_api_base: str = "https://openapi.zalo.me"
    zalo_zns_api_base: str = "https://business.openapi.zalo.me"
    zalo_oauth_base: str = "https://oauth.zaloapp.com"

    alert_group_wait_seconds: float = Field(default=30, ge=0)
    escalate_after_working_hours: float = Field(default=4, gt=0)
    remind_every_working_hours: float = Field(default=8, gt=0)
    zalo_quiet_from: time = time(22, 0)
    zalo_quiet_until: time = time(6, 0)
    digest_weekday: int = Field(default=0, ge=0, le=6)  # Monday
    digest_time: time = time(7, 30)
    dispatch_batch_size: int = Field(default=200, ge=1, le=5000)
    dispatch_max_attempts: int = Field(default=12, ge=1)
    dispatch_poll_seconds: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _zalo_complete(self) -> AlertsSettings:
        if self.zalo_app_id and (self.zalo_secret_key is None or self.zalo_refresh_token is None):
            raise ValueError(
                "DOISOAT_ZALO_SECRET_KEY and DOISOAT_ZALO_REFRESH_TOKEN are needed with "
                "DOISOAT_ZALO_APP_ID"
            )
        return self

    @property
    def email(self) -> EmailSettings | None:
        if not self.smtp_host:
            return None
        return EmailSettings(
            host=self.smtp_host,
            port=self.smtp_port,
            sender=self.smtp_sender,
            username=self.smtp_username,
            password=self.smtp_password,
            starttls=self.smtp_starttls,
        )

    @property
    def zalo(self) -> ZaloSettings | None:
        if not self.zalo_app_id or not self.zalo_secret_key or not self.zalo_refresh_token:
            return None
        return ZaloSettings(
            app_id=self.zalo_app_id,
            secret_key=self.zalo_secret_key,
            refresh_token=self.zalo_refresh_token,
            zns_template_id=self.zalo_zns_template_id,
            oa_api_base=self.zalo_oa_api_base,
            zns_api_base=self.zalo_zns_api_base,
            oauth_base=self.zalo_oauth_base,
        )

    @property
    def group_wait(self) -> timedelta:
        return timedelta(seconds=self.alert_group_wait_seconds)

    @property
    def dispatch(self) -> DispatchSettings:
        """The dispatcher's settings; up to ten batches' worth of rows may join by group wait."""
        return DispatchSettings(
            group_wait=self.group_wait,
            batch_size=self.dispatch_batch_size,
            max_batch_rows=max(self.dispatch_batch_size * 10, MIN_MAX_BATCH_ROWS),
            max_attempts=self.dispatch_max_attempts,
            poll_interval=timedelta(seconds=self.dispatch_poll_seconds),
        )
