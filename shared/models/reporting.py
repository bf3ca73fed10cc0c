"""Stored tallies: the KPI counts of past weeks, kept so that the leaders' board does not count a
province's twelve weeks on every request (the reconciler refreshes them; see
:mod:`services.reconciler.kpis.stored`)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UTCDateTime


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
