"""The synthetic one-stop desk of ``doisoat demo``: units, officers, dossiers and desk reports.

Pure and deterministic: the same ``seed``, ``now``, calendar and rule settings give the same data,
byte for byte (no set iteration, no clock, no hash order). Every dossier is drawn, then judged
with the real rules (:func:`services.reconciler.rules.evaluate`) at ``now``: a planted one must
show exactly its kind and an ordinary one nothing, else it is drawn again. So what the reconciler
later finds equals what was planted here, whatever the weekday, the hour, the office hours or the
thresholds in force.

The fixed units, procedures and staff are in :mod:`~services.app.demo.catalogue`; the shapes of
dossiers in :mod:`~services.app.demo.ordinary` and :mod:`~services.app.demo.planted`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Final

from services.app.demo.catalogue import UNITS, current_units, officers
from services.app.demo.drawer import Drawer
from services.app.demo.ordinary import ordinary
from services.app.demo.plans import DemoData, DossierPlan
from services.app.demo.planted import BUILDERS, plant
from services.reconciler import rules
from services.reconciler.rules import RuleSettings
from shared.calendar import WorkingCalendar
from shared.clock import VN_TZ
from shared.vocabulary import Kind

PERIOD_DAYS: Final = 28  # dossiers received over the last four weeks
PLANTED_PER_KIND: Final = (3, 6)  # each kind is planted this many times (inclusive)
MIN_DOSSIERS: Final = 50
MAX_DOSSIERS: Final = 20_000
MAX_DRAWS: Final = 200
# The kinds the demo plants (DATES_REWRITTEN needs a dossier's dates edited between two
# snapshots, which the demo's one-snapshot-per-step plans do not draw: it is planted nowhere).
KIND_ORDER: Final = tuple(kind for kind in Kind if kind in BUILDERS)


def _judge(plan: DossierPlan, drawer: Drawer) -> list[str]:
    """The kinds the real rules find in ``plan`` at ``now`` (settled first, as it will be sent)."""
    plan.settle(drawer.rng, drawer.now)
    facts = plan.facts()
    reports = [plan.report] if plan.report is not None else []
    found = rules.evaluate(
        facts, reports, now=drawer.now, calendar=drawer.cal, settings=drawer.settings
    )
    return [finding.kind.value for finding in found]


def _draw(
    make: Callable[[], DossierPlan | None], drawer: Drawer, expected: list[str]
) -> DossierPlan:
    """Draw with ``make`` until the rules find exactly ``expected``; give up after MAX_DRAWS."""
    for _ in range(MAX_DRAWS):
        plan = make()
        if plan is not None and _judge(plan, drawer) == expected:
            return plan
    raise RuntimeError(f"could not draw a demo dossier showing {expected or 'nothing'}")


def _codes(plans: list[DossierPlan]) -> None:
    """``{agency}-{yyMMdd}-{NNNN}``, the sequence per agency and day (in drawing order)."""
    sequence: dict[tuple[str, date], int] = {}
    for plan in plans:
        key = (plan.unit.code, plan.day)
        sequence[key] = sequence.get(key, 0) + 1
        plan.code = f"{plan.unit.code}-{plan.day:%y%m%d}-{sequence[key]:04d}"


def generate(
    *,
    now: datetime,
    seed: int,
    dossiers: int,
    calendar: WorkingCalendar,
    settings: RuleSettings,
) -> DemoData:
    """``dossiers`` dossiers known to the system (planted ones included) plus desk-only reports."""
    if not MIN_DOSSIERS <= dossiers <= MAX_DOSSIERS:
        raise ValueError(f"dossiers must be between {MIN_DOSSIERS} and {MAX_DOSSIERS}")
    rng = random.Random(f"doisoat-demo:{seed}")
    last_day = now.astimezone(VN_TZ).date()
    first_day = last_day - timedelta(days=PERIOD_DAYS - 1)
    drawer = Drawer(rng, now=now, calendar=calendar, settings=settings, first_day=first_day)
    units = current_units()
    deciding = [unit for unit in UNITS if unit.procedures]
    planted = {kind.value: rng.randint(*PLANTED_PER_KIND) for kind in KIND_ORDER}

    slots: list[Kind | None] = [kind for kind in KIND_ORDER for _ in range(planted[kind.value])]
    in_system = sum(1 for slot in slots if slot is not Kind.NOT_IN_SYSTEM)
    slots += [None] * (dossiers - in_system)
    rng.shuffle(slots)

    plans: list[DossierPlan] = []
    desk_only: list[DossierPlan] = []
    seen: dict[Kind, int] = {}
    for slot in slots:
        if slot is None:
            plans.append(_draw(lambda: ordinary(drawer, deciding), drawer, []))
            continue
        index = seen.get(slot, 0)
        seen[slot] = index + 1

        def make(kind: Kind = slot, position: int = index) -> DossierPlan | None:
            return plant(drawer, kind, position, units)

        plan = _draw(make, drawer, [slot.value])
        (desk_only if slot is Kind.NOT_IN_SYSTEM else plans).append(plan)
    _codes([*plans, *desk_only])
    return DemoData(UNITS, officers(), plans, desk_only, planted, first_day, last_day)
