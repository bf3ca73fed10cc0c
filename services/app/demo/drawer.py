"""The seeded toolbox every demo dossier is drawn with: office time, people, the first steps.

One :class:`Drawer` holds the one random generator of a demo run; every draw goes through it in a
fixed order, so the same seed, ``now``, calendar and rule settings give the same data. The shapes
of dossiers are drawn in :mod:`~services.app.demo.ordinary` and :mod:`~services.app.demo.planted`.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from typing import Final

from services.app.demo.catalogue import (
    FAMILY,
    GIVEN,
    MIDDLE,
    UNIT_BY_CODE,
    DemoUnit,
    Procedure,
    officers,
)
from services.app.demo.plans import DossierPlan, Step
from services.reconciler.rules import DeskReport, RuleSettings
from shared.calendar import WorkingCalendar
from shared.clock import VN_TZ

MINUTE: Final = timedelta(minutes=1)
HOUR: Final = timedelta(hours=1)


class Drawer:
    """Draws plans at ``now`` with one seeded generator (every draw in a fixed order)."""

    def __init__(
        self,
        rng: random.Random,
        *,
        now: datetime,
        calendar: WorkingCalendar,
        settings: RuleSettings,
        first_day: date,
    ) -> None:
        self.rng = rng
        self.now = now.replace(microsecond=0)
        self.cal = calendar
        self.settings = settings
        self.period_start = datetime.combine(first_day, time(0), tzinfo=VN_TZ)
        self.staff: dict[tuple[str, str], list[str]] = {}
        for officer in officers():
            self.staff.setdefault((officer.unit_code, officer.role), []).append(officer.account)
        self.report_seq = 0

    # -- time helpers
    def add(self, start: datetime, hours: float) -> datetime:
        """``hours`` of office time after ``start`` (before it when negative), to the second."""
        moment = self.cal.add_working_time(start, timedelta(hours=hours))
        return moment.astimezone(VN_TZ).replace(microsecond=0)

    def between(self, start: datetime, end: datetime) -> datetime | None:
        """A moment of office time in [start, end], uniformly over office time."""
        span = self.cal.working_time_between(start, end)
        if span <= timedelta(0):
            return None
        moment = self.add(start, span.total_seconds() / 3600 * self.rng.random())
        return min(moment, end)

    def uniform(self, low: float, high: float) -> float:
        """A uniform draw from the one generator."""
        return self.rng.uniform(low, high)

    def chance(self, probability: float) -> bool:
        """True with ``probability``, drawn from the one generator."""
        return self.rng.random() < probability

    # -- who
    def answering(self, unit: DemoUnit) -> str:
        """The unit whose staff handle ``unit``'s dossiers (a merged unit's successor)."""
        return unit.replaced_by or unit.code

    def officer(self, unit: DemoUnit, role: str) -> str:
        """The account of one of the answering unit's officers in ``role``."""
        return self.rng.choice(self.staff[(self.answering(unit), role)])

    def applicant(self) -> str:
        """A made-up Vietnamese full name."""
        rng = self.rng
        return f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"

    def pick_unit(self, units: list[DemoUnit]) -> DemoUnit:
        """A unit, by its share of the dossiers."""
        return self.rng.choices(units, weights=[unit.weight for unit in units])[0]

    def pick_procedure(self, unit: DemoUnit, min_days: int = 0) -> Procedure:
        """One of ``unit``'s procedures by weight, preferring deadlines of ``min_days`` or more."""
        eligible = [p for p in unit.procedures if p.days >= min_days] or list(unit.procedures)
        return self.rng.choices(eligible, weights=[p.weight for p in eligible])[0]

    def report(self, plan: DossierPlan, kind: str, at: datetime, note: str | None = None) -> None:
        """Record the desk's report on ``plan`` (its id numbered per run, by the answering desk)."""
        self.report_seq += 1
        desk_unit = UNIT_BY_CODE[self.answering(plan.unit)]
        officer = self.officer(plan.unit, "desk")
        day = at.astimezone(VN_TZ).strftime("%Y%m%d")
        report_id = f"{desk_unit.slug}-mc-{day}-{self.report_seq:04d}"
        plan.report = DeskReport(report_id, kind, at, officer)  # type: ignore[arg-type]
        plan.report_unit = desk_unit.code
        plan.report_note = note

    # -- the shape every dossier starts with
    def start(self, unit: DemoUnit, procedure: Procedure, received: datetime) -> DossierPlan:
        """A dossier just received at the desk, with its legal due date."""
        channel = 2 if self.chance(0.52) else (3 if self.chance(0.06) else 1)
        submitted = None
        if channel == 2:
            submitted = (received - timedelta(minutes=self.uniform(15, 900))).replace(microsecond=0)
        plan = DossierPlan(
            unit=unit,
            procedure=procedure,
            channel=channel,
            digitised=1 if self.chance(0.86) else 0,
            applicant=self.applicant(),
            received_at=received,
            due_at=self.add(received, procedure.days * 8),
            submitted_at=submitted,
            steps=[Step(received, 2, self.officer(unit, "desk"), "Tiếp nhận hồ sơ", "Công chức")],
        )
        return plan

    def assign(self, plan: DossierPlan, at: datetime, status: int = 4) -> str:
        """Hand ``plan`` to a handler at ``at``; returns the handler's account."""
        handler = self.officer(plan.unit, "handler")
        plan.steps.append(Step(at, status, handler, "Chuyển chuyên viên thẩm định hồ sơ"))
        return handler

    def keep_busy(self, plan: DossierPlan, handler: str) -> None:
        """A recent step, so that an open dossier is not stalled."""
        latest = max(step.at for step in plan.steps)
        if self.cal.working_time_between(latest, self.now) <= HOUR * 4:
            return
        at = self.add(self.now, -self.uniform(0.5, 4))
        if at > latest + 5 * MINUTE:
            content = "Đang thẩm định, lấy ý kiến phối hợp"
            plan.steps.append(Step(at, plan.steps[-1].status, handler, content, snapshot=False))
