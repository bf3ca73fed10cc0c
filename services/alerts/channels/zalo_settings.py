"""Settings of the Zalo channels (``DOISOAT_ZALO_*``), shared by the token manager and channels."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class ZaloSettings(BaseModel):
    """Zalo app and OA settings (``DOISOAT_ZALO_*``)."""

    model_config = ConfigDict(frozen=True)

    app_id: str = Field(min_length=1)
    secret_key: SecretStr
    refresh_token: SecretStr  # the first one only; later ones live in the token store
    zns_template_id: str | None = None
    oa_api_base: str  # defaults live in AlertsSettings (DOISOAT_ZALO_*_BASE)
    zns_api_base: str
    oauth_base: str
    timeout: float = Field(default=10, gt=0)
    zns_development_mode: bool = False  # sends {"mode": "development"} (test templates)
    refresh_margin_seconds: float = Field(default=600, ge=0)  # refresh this long before expiry

    @field_validator("oa_api_base", "zns_api_base", "oauth_base")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")
