"""Planted demo dossiers: one builder per discrepancy kind, each shaped to show exactly that kind.

The shapes follow the rule settings in force (grace after a return, time tolerance, due-soon
window, stall threshold), so a planted dossier is found whatever the thresholds; the generator
still judges each with the real rules and draws again when one misses.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

from services.app.demo.catalogue import DemoUnit
from services.app.demo.drawer import HOUR, MINUTE, Drawer
from services.app.demo.plans import DossierPlan, Step
from shared.dvcqg import format_thoi_diem
from shared.vocabulary import Kind


def _received_before(drawer: Drawer, unit: DemoUnit, moment: datetime, share: float) -> DossierPlan:
    """A dossier received ``share`` of its legal time before ``moment``."""
    procedure = drawer.pick_procedure(unit, min_days=3)
    received = drawer.add(moment, -procedure.days * 8 * share)
    return drawer.start(unit, procedure, received)


def _returned_but_open(drawer: Drawer, unit: DemoUnit, index: int) -> DossierPlan | None:
    """Handed back at the desk past the grace period; the system still shows it in hand."""
    latest = drawer.now - drawer.settings.return_grace - 20 * MINUTE
    occurred = drawer.add(latest, -drawer.uniform(0.25, 12))
    plan = _received_before(drawer, unit, occurred, drawer.uniform(0.4, 0.9))
    plan.channel = 1  # handed over at the desk
    drawer.assign(plan, drawer.add(plan.received_at, 1), 6 if index % 4 == 3 else 4)  # type: ignore[arg-type]
    drawer.report(plan, "returned", occurred, "Đã trả kết quả trực tiếp cho công dân")
    return plan


def _time_mismatch(drawer: Drawer, unit: DemoUnit, index: int) -> DossierPlan | None:
    """Returned, but the system's return time is beyond the tolerance from the desk's."""
    offset = drawer.settings.time_tolerance + 2 * HOUR  # 6 h with the default tolerance
    latest = drawer.now - offset - 10 * MINUTE
    occurred = drawer.between(drawer.add(latest, -40), latest)
    if occurred is None:
        return None
    finished = drawer.add(occurred, -drawer.uniform(1, 8))
    plan = _received_before(drawer, unit, finished, drawer.uniform(0.5, 0.9))
    handler = drawer.assign(plan, drawer.add(plan.received_at, 1))  # type: ignore[arg-type]
    plan.finished_at = finished
    plan.steps.append(Step(finished, 9, handler, "Hoàn thành xử lý"))
    plan.returned_at = occurred + offset  # typed in later, with the time of typing
    desk = drawer.officer(unit, "desk")
    plan.steps.append(Step(plan.returned_at, 10, desk, "Trả kết quả", "Công chức"))
    drawer.report(plan, "returned", occurred, "Đã trả kết quả cho công dân")
    return plan


def _status_conflict(drawer: Drawer, unit: DemoUnit, index: int) -> DossierPlan | None:
    """Desk and system disagree on the outcome (returned vs stopped, withdrawn vs returned)."""
    occurred = drawer.between(drawer.add(drawer.now, -60), drawer.now - 30 * MINUTE)
    if occurred is None:
        return None
    plan = _received_before(drawer, unit, occurred, drawer.uniform(0.5, 0.9))
    handler = drawer.assign(plan, drawer.add(plan.received_at, 1))  # type: ignore[arg-type]
    if index % 4 == 3:  # the applicant withdrew at the desk, the system says returned
        returned = drawer.add(occurred, drawer.uniform(0.5, 4))
        if returned > drawer.now:
            return None
        plan.finished_at = drawer.add(occurred, -0.5)
        plan.returned_at = returned
        plan.steps.append(Step(plan.finished_at, 9, handler, "Hoàn thành xử lý"))
        plan.steps.append(Step(returned, 10, handler, "Trả kết quả"))
        drawer.report(plan, "withdrawn", occurred, "Công dân rút hồ sơ")
        return plan
    stopped = drawer.add(occurred, -drawer.uniform(1, 6))
    plan.steps.append(Step(stopped, 8, handler, "Dừng xử lý"))
    drawer.report(plan, "returned", occurred, "Đã trả kết quả cho công dân")
    return plan


def _not_in_system(drawer: Drawer, unit: DemoUnit, index: int) -> DossierPlan | None:
    """A paper dossier returned at the desk that the system never received."""
    latest = drawer.now - drawer.settings.return_grace - 20 * MINUTE
    occurred = drawer.between(drawer.add(latest, -60), latest)
    if occurred is None:
        return None
    received = drawer.add(occurred, -drawer.uniform(4, 40))
    plan = DossierPlan(
        unit=unit,
        procedure=drawer.pick_procedure(unit),
        channel=1,
        digitised=0,
        applicant=drawer.applicant(),
        received_at=received,
        due_at=None,
        steps=[],
    )
    drawer.report(plan, "returned", occurred, "Hồ sơ giấy, trả kết quả tại Bộ phận Một cửa")
    return plan


def _overdue(drawer: Drawer, unit: DemoUnit, index: int) -> DossierPlan | None:
    """Past its due date (or its rescheduled one) with no new apology."""
    due = drawer.add(drawer.now, -drawer.uniform(2, 30))
    if index % 4 == 3:  # apologised once, and the new date has passed too
        first_due = drawer.add(due, -drawer.uniform(8, 24))
        plan = _received_before(drawer, unit, first_due, 1)
        plan.due_at = first_due
        handler = drawer.assign(plan, drawer.add(plan.received_at, 1))  # type: ignore[arg-type]
        asked = drawer.add(first_due, -2)
        plan.reschedules.append(
            (
                "DanhSachXinLoi",
                {
                    "NgayYeuCau": format_thoi_diem(asked),
                    "NgayHenTraTruoc": format_thoi_diem(first_due),
                    "NgayHenTraMoi": format_thoi_diem(due),
                    "LyDo": "Chờ kết quả đo đạc",
                },
            )
        )
        plan.steps.append(Step(asked, 4, handler, "Gửi văn bản xin lỗi, hẹn lại ngày trả"))
    else:
        plan = _received_before(drawer, unit, due, 1)
        plan.due_at = due
        handler = drawer.assign(plan, drawer.add(plan.received_at, 1))  # type: ignore[arg-type]
    drawer.keep_busy(plan, handler)
    return plan


def _due_soon(drawer: Drawer, unit: DemoUnit, index: int) -> DossierPlan | None:
    """Due within the due-soon window, still being worked on."""
    window = drawer.settings.due_soon_window.total_seconds() / 3600
    due = drawer.add(drawer.now, window * drawer.uniform(0.25, 0.75))  # 4 h with the default
    plan = _received_before(drawer, unit, due, 1)
    plan.due_at = due
    handler = drawer.assign(plan, drawer.add(plan.received_at, 0.5))  # type: ignore[arg-type]
    drawer.keep_busy(plan, handler)
    return plan


def _stalled(drawer: Drawer, unit: DemoUnit, index: int) -> DossierPlan | None:
    """No step for longer than the stall threshold."""
    stall_hours = drawer.settings.stall_after.total_seconds() / 3600
    last = drawer.add(drawer.now, -(stall_hours + drawer.uniform(2, 16)))
    procedure = drawer.pick_procedure(unit, min_days=10)
    received = drawer.add(last, -drawer.uniform(1, 8))
    plan = drawer.start(unit, procedure, received)
    drawer.assign(plan, last)
    return plan


BUILDERS: Final[dict[Kind, Callable[[Drawer, DemoUnit, int], DossierPlan | None]]] = {
    Kind.RETURNED_BUT_OPEN: _returned_but_open,
    Kind.TIME_MISMATCH: _time_mismatch,
    Kind.STATUS_CONFLICT: _status_conflict,
    Kind.NOT_IN_SYSTEM: _not_in_system,
    Kind.OVERDUE_NO_APOLOGY: _overdue,
    Kind.DUE_SOON: _due_soon,
    Kind.STALLED: _stalled,
}


def plant(drawer: Drawer, kind: Kind, index: int, units: list[DemoUnit]) -> DossierPlan | None:
    """The ``index``-th dossier planted with ``kind``, the units taken in turn; None to redraw."""
    unit = units[index % len(units)]
    plan = BUILDERS[kind](drawer, unit, index)
    if plan is not None:
        plan.planted = kind
    return plan
