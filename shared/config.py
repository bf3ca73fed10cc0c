"""Settings shared by every doisoat process.

Each service has its own pydantic-settings class on top of :class:`BaseDoisoatSettings`; the
environment (and an optional ``.env`` file) is read only there, never elsewhere in the code.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.calendar import WorkingCalendar

Role = Literal["source", "desk", "officer", "admin"]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/doisoat.db"
PLACEHOLDER_SECRET = "change-me-development-only"


class ApiKey(BaseModel):
    """One entry of ``DOISOAT_API_KEYS``."""

    key: str = Field(min_length=16)
    role: Role
    units: list[str] = Field(default_factory=list)
    account: str = Field(min_length=1)

    @model_validator(mode="after")
    def _units_unless_admin(self) -> ApiKey:
        if self.role != "admin" and not self.units:
            raise ValueError(f"API key for {self.account!r} with role {self.role!r} needs units")
        return self


class BaseDoisoatSettings(BaseSettings):
    """What every process needs: where the database is, which port it serves, who may call."""

    model_config = SettingsConfigDict(
        env_prefix="DOISOAT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: Literal["development", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    http_host: str = "0.0.0.0"
    http_port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    secret_key: str = PLACEHOLDER_SECRET
    public_base_url: str = "http://localhost:8000"
    api_keys: list[ApiKey] = Field(default_factory=list)
    ack_link_max_age_hours: float = Field(default=168, gt=0)
    # Where dossier events stream from; also tells the reconciler whether to wait for the
    # ingest watermark (contract §4). Kafka consumption is off when unset.
    kafka_bootstrap_servers: str | None = None
    office_hours: str = "07:00-11:30,13:30-17:00"
    calendar_overrides: dict[date, bool] = Field(default_factory=dict)

    @field_validator("office_hours")
    @classmethod
    def _office_hours_parse(cls, value: str) -> str:
        WorkingCalendar.parse_office_hours(value)
        return value

    @property
    def kafka_enabled(self) -> bool:
        return bool(self.kafka_bootstrap_servers)

    def calendar(self) -> WorkingCalendar:
        """The working-day calendar every service judges time with (office hours, holidays)."""
        return WorkingCalendar(
            office_hours=WorkingCalendar.parse_office_hours(self.office_hours),
            overrides=self.calendar_overrides,
        )

    @model_validator(mode="after")
    def _no_placeholder_secret_in_production(self) -> BaseDoisoatSettings:
        if self.environment == "production" and self.secret_key == PLACEHOLDER_SECRET:
            raise ValueError("DOISOAT_SECRET_KEY must be set to a real secret in production")
        return self
