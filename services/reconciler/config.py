"""Settings of the reconciler: rule thresholds, office hours, how often it looks for work."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from services.reconciler.rules import RuleSettings
from shared.calendar import WorkingCalendar
from shared.config import BaseDoisoatSettings


class ReconcilerSettings(BaseDoisoatSettings):
    return_grace_minutes: float = Field(default=120, ge=0)
    time_tolerance_minutes: float = Field(default=240, ge=0)
    due_soon_working_hours: float = Field(default=8, ge=0)
    stall_working_days: float = Field(default=3, gt=0)
    reconcile_poll_seconds: float = Field(default=1.0, gt=0)
    sweep_interval_seconds: float = Field(default=60.0, gt=0)
    # How often the past weeks' KPI counts the leaders' board reads are counted again.
    kpi_weeks_refresh_minutes: float = Field(default=5, gt=0)
    reconcile_chunk_size: int = Field(default=1000, ge=1, le=10_000)
    personal_data_retention_months: int | None = Field(default=None, ge=1)  # None: never purge
    # A partition no consumer reported for this long makes the ingest watermark unknown.
    ingest_watermark_stale_seconds: float = Field(default=120, gt=0)

    @property
    def watermark_stale_after(self) -> timedelta:
        return timedelta(seconds=self.ingest_watermark_stale_seconds)

    def rule_settings(self, calendar: WorkingCalendar) -> RuleSettings:
        return RuleSettings(
            return_grace=timedelta(minutes=self.return_grace_minutes),
            time_tolerance=timedelta(minutes=self.time_tolerance_minutes),
            due_soon_window=timedelta(hours=self.due_soon_working_hours),
            stall_after=calendar.day_length * self.stall_working_days,
        )
