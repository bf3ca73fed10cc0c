"""Stored tallies: the KPI counts of past weeks, kept so that the leaders' board does not count a
province's twelve weeks on every request (the reconciler refreshes them; see
:mod:`services.reconciler.kpis.stored`), and each ended late dossier's lateness, so that a
province-month's report sums figures instead of redoing §7's arithmetic for thousands of
dossiers (:mod:`services.reconciler.lateness.stored`)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, DossierCode, JsonColumn, UTCDateTime


class KpiWeek(Base):
    """A past ISO week whose counts are stored, and when they were counted."""

    __tablename__ = "kpi_weeks"

    week_start: Mapped[date] = mapped_column(Date, primary_key=True)  # its Monday
    counted_at: Mapped[datetime] = mapped_column(UTCDateTime)


class KpiWeekCount(Base):
    """What counts under one unit code in a stored week: its dossiers by their stored unit, its
    desk reports by the unit that answered for the desk when counted (contract §4's counts)."""

    __tablename__ = "kpi_week_counts"

    week_start: Mapped[date] = mapped_column(Date, primary_key=True)
    unit_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    received: Mapped[int] = mapped_column(Integer)
    with_due_date: Mapped[int] = mapped_column(Integer)
    on_time: Mapped[int] = mapped_column(Integer)
    online: Mapped[int] = mapped_column(Integer)
    digitised: Mapped[int] = mapped_column(Integer)
    reported: Mapped[int] = mapped_column(Integer)
    reported_known: Mapped[int] = mapped_column(Integer)


class DossierLateness(Base):
    """An ended late dossier's figures for ``GET /api/v1/lateness`` (contract §7), written when
    the reconciler judges it, with the facts they were computed from: the report uses them only
    while the dossier still shows the same due date, end, snapshot and number of steps."""

    __tablename__ = "dossier_lateness"

    dossier_code: Mapped[str] = mapped_column(DossierCode, primary_key=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    snapshot_emitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    step_count: Mapped[int] = mapped_column(Integer)
    overrun_hours: Mapped[float] = mapped_column(Float)
    charges: Mapped[dict[str, float]] = mapped_column(JsonColumn)  # officer → overrun hours
    apology_any: Mapped[bool] = mapped_column(Boolean)
    apology_late: Mapped[bool] = mapped_column(Boolean)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
