"""Settings of the workspace: sessions, and the alerts' email settings that send sign-in links."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from services.alerts.config import AlertsSettings


class WorkspaceSettings(AlertsSettings):
    """The API process's settings: the pages send sign-in links through the alerts' email."""

    session_hours: float = Field(default=12, gt=0)
    sign_in_requests_per_hour: int = Field(default=5, ge=1)
    # The board reads past weeks' KPI counts the reconciler stored at most this long ago (it
    # refreshes them every DOISOAT_KPI_WEEKS_REFRESH_MINUTES); older ones, or 0, count live.
    board_stored_weeks_max_minutes: float = Field(default=15, ge=0)

    @property
    def session_lifetime(self) -> timedelta:
        return timedelta(hours=self.session_hours)

    @property
    def board_stored_weeks_max_age(self) -> timedelta:
        return timedelta(minutes=self.board_stored_weeks_max_minutes)

    @property
    def secure_cookies(self) -> bool:
        """Cookies only over HTTPS when the public address is HTTPS."""
        return self.public_base_url.lower().startswith("https://")
