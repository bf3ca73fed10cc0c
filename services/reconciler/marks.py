"""The moments at which a verdict can change by time alone, precomputed so that the sweep
selects only the dossiers whose answer may have changed (an indexed query on the schedule)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.reconciler.facts import (
    TICK,
    DeskReport,
    DossierFacts,
    RuleSettings,
    as_utc,
    is_open,
)
from shared.calendar import WorkingCalendar
from shared.dvcqg import WAITING_ON_APPLICANT

# ---- precomputed marks ---------------------------------------------------------------------


def due_soon_window(
    due_at: datetime,
    received_at: datetime | None,
    *,
    calendar: WorkingCalendar,
    settings: RuleSettings,
) -> timedelta:
    """The warning window: the setting, but at most a quarter of the dossier's allowed working
    time (``NgayTiepNhan`` → due date), so a same-day procedure is warned an hour or two ahead,
    not at intake."""
    if received_at is None or received_at >= due_at:
        return settings.due_soon_window
    allowed = calendar.working_time_between(as_utc(received_at), as_utc(due_at))
    return min(settings.due_soon_window, allowed / 4)


def due_soon_from(
    due_at: datetime | None,
    *,
    calendar: WorkingCalendar,
    settings: RuleSettings,
    received_at: datetime | None = None,
) -> datetime | None:
    """The earliest moment from which at most the due-soon window of office time is left.

    That is the end of office time before the point ``window`` back from ``due_at``: when the
    office closes on Friday with one hour left before a Monday 08:00 deadline, a one-hour window
    already holds on Friday at 17:00.
    """
    if due_at is None:
        return None
    window = due_soon_window(due_at, received_at, calendar=calendar, settings=settings)
    back = calendar.add_working_time(as_utc(due_at), -window)
    return calendar.previous_office_end(back)


def overdue_from(due_at: datetime | None) -> datetime | None:
    """The first moment strictly after the due date: at ``due_at`` itself it is still on time."""
    return None if due_at is None else as_utc(due_at) + TICK


def stall_mark(
    facts: DossierFacts, *, calendar: WorkingCalendar, settings: RuleSettings
) -> datetime | None:
    """The first moment at which more than ``stall_after`` of office time has passed.

    None when the rule cannot apply: not open, waiting on the applicant (that time does not
    count, and the status has held since ``last_activity_at``), or no activity known.
    """
    if not is_open(facts) or facts.status in WAITING_ON_APPLICANT or facts.last_activity_at is None:
        return None
    reached = calendar.add_working_time(as_utc(facts.last_activity_at), settings.stall_after)
    # Office time then has to resume: the rule holds from the first instant past that point.
    return calendar.next_office_moment(reached) + TICK


@dataclass(frozen=True, slots=True)
class Deadlines:
    """An open dossier's deadline marks, computed once for both the findings and the next check.

    They depend on the facts alone, so the reconciler works them out while the database is
    still looking up the chunk's desk reports — also for the few open dossiers a desk report
    then takes out of the deadline rules, rather than wait for the reports to know which.
    """

    due_at: datetime | None
    due_soon: datetime | None
    stall: datetime | None


def deadlines_of(
    facts: DossierFacts, *, calendar: WorkingCalendar, settings: RuleSettings
) -> Deadlines:
    due = None if facts.due_at is None else as_utc(facts.due_at)
    return Deadlines(
        due_at=due,
        due_soon=due_soon_from(
            due, calendar=calendar, settings=settings, received_at=facts.received_at
        ),
        stall=stall_mark(facts, calendar=calendar, settings=settings),
    )


def grace_end(report: DeskReport, settings: RuleSettings) -> datetime:
    """When the system is expected to have caught up with the desk (wall-clock grace).

    The boundary convention, as for the due date: at ``grace_end`` itself the system is still
    within its grace (on time); the rules hold from the first instant after it.
    """
    return as_utc(report.occurred_at) + settings.return_grace


def judged_from(report: DeskReport, settings: RuleSettings) -> datetime:
    """The first moment a desk report may be compared with the system (after its grace)."""
    return grace_end(report, settings) + TICK
